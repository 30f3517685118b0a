// Chat state across turns: KV prefix reuse gives the same tokens as a fresh run, only the
// new tokens are prefilled, re-sent media hit the vision cache; seeded sampling is
// reproducible; errors are q3vl::Error, not crashes; streaming and cancellation.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <fstream>
#include <iterator>

#include "q3vl/chat.h"
#include "q3vl/error.h"
#include "q3vl/model.h"
#include "runtime/runtime_fixture.h"
#include "support/golden.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

TEST(Chat, ContinuingFromCacheEqualsFreshRunAndHf) {
  const GoldenCase c = GoldenSet::open().load_case("two_turn");
  const auto model = runtime_model("tiny");
  const auto full = golden_messages(c);  // user(image 1), assistant, user(image 2)
  ASSERT_EQ(full.size(), 3u);
  const GenerateOptions options = greedy_options(*model, 32);

  Chat chat(model);
  const GenerateResult first = chat.generate({full[0]}, options);
  const ChatStats after_first = chat.stats();
  EXPECT_EQ(after_first.vision_calls, 1);
  EXPECT_EQ(after_first.reused_tokens, 0);
  EXPECT_EQ(after_first.prefilled_tokens, first.usage.prompt_tokens);
  // KV capacity is prompt + max_new_tokens, not the model's context; the last token is not fed.
  EXPECT_EQ(after_first.kv_capacity, first.usage.prompt_tokens + 32);
  EXPECT_EQ(after_first.cached_tokens, first.usage.prompt_tokens + 31);

  const GenerateResult second = chat.generate(full, options);
  const ChatStats after_second = chat.stats();
  // The first image is served from the cache; only the second one is encoded.
  EXPECT_EQ(after_second.vision_calls, 2);
  EXPECT_EQ(after_second.vision_cache_hits, 1);
  // The whole first prompt up to the assistant header is reused (the generated reply
  // differs from the golden's fixed reply, so the match ends inside the reply).
  EXPECT_GE(second.usage.cached_tokens, first.usage.prompt_tokens);
  EXPECT_EQ(after_second.prefilled_tokens - after_first.prefilled_tokens,
            second.usage.prompt_tokens - second.usage.cached_tokens);

  const GenerateResult fresh = generate(model, full, options);
  EXPECT_EQ(fresh.usage.cached_tokens, 0);
  EXPECT_EQ(second.token_ids, fresh.token_ids);
  EXPECT_EQ(second.text, fresh.text);
  const GoldenI64 hf = c.model_i64("tiny", "greedy_ids");
  const GoldenF32 margin = c.model_f32("tiny", "greedy_margin");
  for (std::size_t s = 0; s < hf.values.size(); ++s) {
    ASSERT_EQ(second.token_ids[s], hf.values[s]) << "step " << s;
    if (margin.values[s] < 2 * 5e-4f) break;
  }
}

TEST(Chat, SameConversationAgainReusesAllButLastToken) {
  const GoldenCase c = GoldenSet::open().load_case("image_small");
  const auto model = runtime_model("tiny-untied");
  Chat chat(model);
  const auto messages = golden_messages(c);
  const GenerateResult a = chat.generate(messages, greedy_options(*model, 8));
  const GenerateResult b = chat.generate(messages, greedy_options(*model, 8));
  EXPECT_EQ(a.token_ids, b.token_ids);
  EXPECT_EQ(b.usage.cached_tokens, b.usage.prompt_tokens - 1);
  EXPECT_EQ(chat.stats().vision_calls, 1);
  EXPECT_EQ(chat.stats().vision_cache_hits, 1);
}

TEST(Chat, SeededSamplingIsReproducible) {
  const GoldenCase c = GoldenSet::open().load_case("image_odd");
  const auto model = runtime_model("tiny");
  GenerateOptions options = model->default_options();
  options.sampling.do_sample = true;
  options.sampling.temperature = 1.5f;
  options.sampling.top_k = 0;
  options.sampling.top_p = 1.0f;
  options.sampling.seed = 1234;
  options.max_new_tokens = 24;
  options.stop_token_ids.clear();
  const auto messages = golden_messages(c);
  const GenerateResult a = generate(model, messages, options);
  const GenerateResult b = generate(model, messages, options);
  EXPECT_EQ(a.token_ids, b.token_ids);
  EXPECT_EQ(a.text, b.text);
  options.sampling.seed = 99;
  const GenerateResult other = generate(model, messages, options);
  EXPECT_NE(a.token_ids, other.token_ids);  // random weights: near-uniform over 151936 ids
}

TEST(Chat, StreamedPiecesConcatenateToTextAndCallbackCancels) {
  const GoldenCase c = GoldenSet::open().load_case("text_only");
  const auto model = runtime_model("tiny");
  std::string streamed;
  const GenerateResult r = generate(model, golden_messages(c), greedy_options(*model, 16), [&](std::string_view piece) {
    EXPECT_FALSE(piece.empty());
    streamed += piece;
    return true;
  });
  EXPECT_EQ(streamed, r.text);
  int calls = 0;
  const GenerateResult cancelled =
      generate(model, golden_messages(c), greedy_options(*model, 16), [&](std::string_view) { return ++calls < 2; });
  EXPECT_EQ(cancelled.finish_reason, FinishReason::cancelled);
  EXPECT_EQ(calls, 2);
  EXPECT_LT(cancelled.token_ids.size(), 16u);
}

TEST(Chat, StopTokenEndsGeneration) {
  const GoldenCase c = GoldenSet::open().load_case("text_only");
  const auto model = runtime_model("tiny");
  const GoldenI64 hf = c.model_i64("tiny", "greedy_ids");
  GenerateOptions options = greedy_options(*model, 32);
  options.stop_token_ids = {hf.values.at(3)};
  const GenerateResult r = generate(model, golden_messages(c), options);
  EXPECT_EQ(r.finish_reason, FinishReason::stop);
  EXPECT_EQ(r.token_ids.back(), hf.values.at(3));
  EXPECT_LE(r.token_ids.size(), 4u);
}

TEST(Chat, DataUrlImageEqualsTheFile) {
  const GoldenCase c = GoldenSet::open().load_case("image_small");
  const auto model = runtime_model("tiny");
  auto messages = golden_messages(c);
  const GenerateResult from_file = generate(model, messages, greedy_options(*model, 6));
  auto& part = std::get<std::vector<text::ContentPart>>(messages[0].content)[0];
  ASSERT_EQ(part.type, text::ContentPart::Type::image);
  std::ifstream in(part.media.location, std::ios::binary);
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string b64(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  b64.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), bytes.data(),
                                                      static_cast<int>(bytes.size()))));
  part.media.kind = text::MediaSource::Kind::data_url;
  part.media.location = "data:image/png;base64," + b64;
  const GenerateResult from_url = generate(model, messages, greedy_options(*model, 6));
  EXPECT_EQ(from_url.token_ids, from_file.token_ids);
  EXPECT_EQ(from_url.usage.image_tokens, from_file.usage.image_tokens);
}

TEST(Chat, ErrorsAreClear) {
  const auto model = runtime_model("tiny");
  text::Message user;
  user.role = "user";
  text::ContentPart image;
  image.type = text::ContentPart::Type::image;
  image.media.location = (work_dir() / "no-such-image.png").string();
  text::ContentPart prompt;
  prompt.text = "hi";
  user.content = std::vector<text::ContentPart>{image, prompt};
  EXPECT_THROW(
      {
        try {
          generate(model, {user}, greedy_options(*model, 4));
        } catch (const Error& e) {
          EXPECT_EQ(e.kind(), ErrorKind::io);
          EXPECT_NE(std::string(e.what()).find("no-such-image.png"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  // Not an image at all.
  const auto junk = work_dir() / "rt-junk.png";
  std::ofstream(junk) << "not an image";
  image.media.location = junk.string();
  user.content = std::vector<text::ContentPart>{image, prompt};
  EXPECT_THROW(generate(model, {user}, greedy_options(*model, 4)), Error);
  // A prompt longer than the context.
  text::Message longer;
  longer.role = "user";
  std::string text;
  for (std::int64_t i = 0; i < model->context_length(); ++i) text += " a";
  longer.content = text;
  try {
    generate(model, {longer}, greedy_options(*model, 4));
    ADD_FAILURE() << "expected a limit error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::limit) << e.what();
  }
  // A chat stays usable after an error.
  Chat chat(model);
  EXPECT_THROW(chat.generate({user}, greedy_options(*model, 4)), Error);
  text::Message ok;
  ok.role = "user";
  ok.content = std::string("hello");
  EXPECT_EQ(chat.generate({ok}, greedy_options(*model, 3)).token_ids.size(), 3u);
}

}  // namespace
}  // namespace q3vl::testing
