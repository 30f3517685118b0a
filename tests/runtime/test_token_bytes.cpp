// TokenBytes (the per-token bytes behind json_object and logprob texts) against the
// tokenizer's own decode (HF tokenizers, src/text) on the real Qwen3 vocabulary.
#include <gtest/gtest.h>

#include <string>

#include "q3vl/model.h"
#include "q3vl/tokenizer.h"
#include "runtime/json_constraint.h"
#include "runtime/runtime_fixture.h"
#include "runtime/token_bytes.h"
#include "support/test_paths.h"

namespace q3vl::runtime {
namespace {

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(TokenBytes, SingleTokensEqualTheTokenizersDecode) {
  const auto tokenizer = text::Tokenizer::load(testing::tokenizer_dir());
  const auto width = static_cast<std::int64_t>(tokenizer.vocab_size()) + 5;  // logits padding ids
  const TokenBytes table(tokenizer, width);
  ASSERT_EQ(table.size(), width);
  std::int64_t compared = 0, partial = 0, special = 0;
  for (std::int64_t id = 0; id < static_cast<std::int64_t>(tokenizer.vocab_size()); ++id) {
    const text::TokenId one[1] = {static_cast<text::TokenId>(id)};
    if (table.special(id)) {
      EXPECT_TRUE(table.bytes(id).empty());
      EXPECT_EQ(tokenizer.decode(one, /*skip_special_tokens=*/true), "") << id;
      ++special;
      continue;
    }
    const std::string_view bytes = table.bytes(id);
    ASSERT_FALSE(bytes.empty()) << id;
    if (!valid_utf8(bytes)) {
      ++partial;  // part of a character: decode shows U+FFFD instead
      continue;
    }
    ASSERT_EQ(bytes, tokenizer.decode(one, true)) << "id " << id;
    ++compared;
  }
  for (std::int64_t id = static_cast<std::int64_t>(tokenizer.vocab_size()); id < width; ++id) {
    EXPECT_TRUE(table.bytes(id).empty());
  }
  EXPECT_TRUE(table.bytes(-1).empty());
  std::printf("[token bytes] %lld equal to decode, %lld partial UTF-8, %lld special\n",
              static_cast<long long>(compared), static_cast<long long>(partial), static_cast<long long>(special));
  EXPECT_GT(compared, 140000);
  EXPECT_GT(partial, 0);
}

TEST(TokenBytes, ConcatenationEqualsDecodeOfASequence) {
  const auto tokenizer = text::Tokenizer::load(testing::tokenizer_dir());
  const TokenBytes table(tokenizer, static_cast<std::int64_t>(tokenizer.vocab_size()));
  // Multi-byte characters split across tokens, emoji, CJK, whitespace runs.
  const std::string text = "Grüße, 世界! 🤖🚀 naïve café\n\n\t  {\"k\": [1, 2]} ありがとう <think>x</think>";
  const auto ids = tokenizer.encode(text);
  std::string joined;
  for (const auto id : ids) joined += table.bytes(id);
  EXPECT_EQ(joined, tokenizer.decode(ids, true));
  EXPECT_EQ(joined, text);
}

// plain_text (JsonConstraint's fast path inside strings) agrees with the JSON machine fed
// the token inside a string: accepted, still in the string, nothing escaped or closed.
TEST(TokenBytes, PlainTextIsWhatStaysInsideAJsonString) {
  const auto tokenizer = text::Tokenizer::load(testing::tokenizer_dir());
  const TokenBytes table(tokenizer, static_cast<std::int64_t>(tokenizer.vocab_size()));
  JsonMachine in_string;
  for (const char c : std::string("{\"k\":\"")) ASSERT_TRUE(in_string.feed(static_cast<unsigned char>(c)));
  std::int64_t plain = 0;
  for (std::int64_t id = 0; id < table.size(); ++id) {
    const std::string_view bytes = table.bytes(id);
    JsonMachine m = in_string;
    const bool stays = !bytes.empty() && bytes.find_first_of("\"\\") == std::string_view::npos && m.feed_all(bytes) &&
                       m.in_plain_string();
    ASSERT_EQ(table.plain_text(id), stays) << "id " << id << " bytes " << bytes;
    plain += stays ? 1 : 0;
  }
  EXPECT_GT(plain, 140000);
}

TEST(TokenBytes, ModelTokenBytesIsThePackagesTable) {
  const auto model = testing::runtime_model("tiny");
  const auto tokenizer = text::Tokenizer::load(testing::tokenizer_dir());
  const text::TokenId hello[1] = {tokenizer.encode(" hello").at(0)};
  EXPECT_EQ(model->token_bytes(hello[0]), " hello");
  EXPECT_EQ(model->token_bytes(model->manifest().tokens.eos_token_ids.at(0)), "");  // special
  EXPECT_EQ(model->token_bytes(-3), "");
  EXPECT_EQ(model->token_bytes(model->manifest().vocab_size), "");
}

}  // namespace
}  // namespace q3vl::runtime
