// End-to-end: the q3vl executable's `run` and `chat` subcommands on the FP32 tiny package.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/runtime_fixture.h"
#include "support/golden.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

using Output = ShellOutput;

std::filesystem::path messages_file(const GoldenCase& c) { return golden_messages_file(c, "rt-messages-"); }

TEST(Cli, RunJsonGreedyMatchesHf) {
  for (const char* name : {"image_small", "two_images", "video", "two_turn"}) {
    const GoldenCase c = GoldenSet::open().load_case(name);
    const auto package = runtime_package("tiny");
    const Output r = run_shell(quote(q3vl_exe()) + " run --model " + quote(package) + " --messages " +
                               quote(messages_file(c)) + " --temperature 0 --max-new-tokens 32 --json --threads 1");
    ASSERT_EQ(r.status, 0) << r.out;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const auto ids = j.at("token_ids").get<std::vector<std::int64_t>>();
    const GoldenI64 hf = c.model_i64("tiny", "greedy_ids");
    const GoldenF32 margin = c.model_f32("tiny", "greedy_margin");
    ASSERT_FALSE(ids.empty());
    // Stops early only at a generation_config eos id (HF's goldens never stop).
    if (ids.size() < hf.values.size()) {
      EXPECT_EQ(j.at("finish_reason"), "stop");
    }
    for (std::size_t s = 0; s < ids.size(); ++s) {
      ASSERT_EQ(ids[s], hf.values[s]) << name << " step " << s;
      if (margin.values[s] < 2 * 5e-4f) break;
    }
    EXPECT_EQ(j.at("usage").at("prompt_tokens"), c.input_i64("input_ids").numel());
    EXPECT_EQ(j.at("usage").at("completion_tokens"), static_cast<std::int64_t>(ids.size()));
    for (const char* key : {"vision_ms", "prefill_ms", "prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms"}) {
      EXPECT_TRUE(j.at("timings").contains(key)) << key;
    }
  }
}

// The sampling flags mirroring the server's fields reach the runtime: `q3vl run --json`
// gives the tokens and logprobs q3vl::generate gives in process with the same options
// (the library's own tests check those against HF and double-precision references).
TEST(Cli, RunSamplingFlagsEqualTheLibrary) {
  const auto package = runtime_package("tiny");
  const std::string run = quote(q3vl_exe()) + " run --model " + quote(package) +
                          " --prompt " + quote("Say something about cats.") +
                          " --temperature 0 --max-new-tokens 12 --json --threads 1";
  const std::string flags = " --repetition-penalty 1.5 --presence-penalty 0.5 --frequency-penalty 1.5"
                            " --min-p 0.05 --top-logprobs 3";
  const Output plain = run_shell(run + " --top-logprobs 3");
  const Output r = run_shell(run + flags);
  ASSERT_EQ(plain.status, 0) << plain.out;
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto ids = j.at("token_ids").get<std::vector<std::int64_t>>();
  // Logprobs are taken after the penalties (generate.h): had the flags been ignored, the
  // chosen tokens' logprobs would equal the plain run's.
  const nlohmann::json unpenalised = nlohmann::json::parse(plain.out).at("logprobs");
  float largest_change = 0.0f;
  for (std::size_t t = 0; t < std::min(unpenalised.size(), j.at("logprobs").size()); ++t) {
    largest_change = std::max(largest_change, std::abs(j["logprobs"][t].at("logprob").get<float>() -
                                                       unpenalised[t].at("logprob").get<float>()));
  }
  EXPECT_GT(largest_change, 1e-3f);  // 100x the CLI-vs-library tolerance below

  ModelOptions mo;
  mo.intra_op_threads = 1;
  const auto model = runtime_model("tiny", mo);
  GenerateOptions options = model->default_options();
  options.sampling.do_sample = false;
  options.sampling.temperature = 0.0f;
  options.max_new_tokens = 12;
  options.sampling.repetition_penalty = 1.5f;
  options.sampling.presence_penalty = 0.5f;
  options.sampling.frequency_penalty = 1.5f;
  options.sampling.min_p = 0.05f;
  options.top_logprobs = 3;
  text::Message user;  // as `run --prompt` builds it: one text part
  user.role = "user";
  user.content = std::vector<text::ContentPart>{{text::ContentPart::Type::text, "Say something about cats.", {}}};
  const GenerateResult ref = generate(model, {user}, options);
  ASSERT_EQ(ids, ref.token_ids);
  const auto& logprobs = j.at("logprobs");
  ASSERT_EQ(logprobs.size(), ref.logprobs.size());
  for (std::size_t t = 0; t < ref.logprobs.size(); ++t) {
    EXPECT_NEAR(logprobs[t].at("logprob").get<float>(), ref.logprobs[t].logprob, 1e-5f) << "token " << t;
    ASSERT_EQ(logprobs[t].at("top").size(), 3u);
    for (std::size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(logprobs[t]["top"][k].at("token_id"), ref.logprobs[t].top[k].token_id) << t << " " << k;
      EXPECT_NEAR(logprobs[t]["top"][k].at("logprob").get<float>(), ref.logprobs[t].top[k].logprob, 1e-5f);
    }
  }
}

TEST(Cli, RunJsonObjectFlagGivesOneObject) {
  const auto package = runtime_package("tiny");
  const Output r = run_shell(quote(q3vl_exe()) + " run --model " + quote(package) + " --prompt " +
                             quote("Give me JSON.") + " --temperature 1 --seed 3 --max-new-tokens 40"
                             " --json-object --json --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("finish_reason"), "stop") << r.out;
  EXPECT_TRUE(nlohmann::json::parse(j.at("text").get<std::string>()).is_object()) << r.out;
  // --top-logprobs prints through --json only.
  const Output bad = run_shell(quote(q3vl_exe()) + " run --model " + quote(package) + " --prompt hi --top-logprobs 2 2>&1");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--top-logprobs"), std::string::npos) << bad.out;  // stderr, redirected
}

TEST(Cli, RunErrorsAreOneLineAndNonZero) {
  const auto package = runtime_package("tiny");
  const std::string exe = quote(q3vl_exe());
  struct Case {
    std::string args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"run --model " + quote(work_dir() / "no-such-package") + " --prompt hi", "no-such-package"},
      {"run --model " + quote(package) + " --image " + quote(work_dir() / "missing.png") + " --prompt hi", "missing.png"},
      {"run --model " + quote(package), "--prompt / --messages"},
  };
  for (const auto& c : cases) {
    const Output r = run_shell(exe + " " + c.args + " 2>&1");
    EXPECT_NE(r.status, 0) << c.args;
    EXPECT_NE(r.out.find(c.needle), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

TEST(Cli, ChatScriptedSession) {
  const auto package = runtime_package("tiny");
  const auto image = golden_dir() / "model" / "media" / "small_120x64.png";
  const auto script = work_dir() / "rt-chat-script.txt";
  std::ofstream(script) << "/image " << image.string() << "\nWhat is this?\n/stats\nAnd now?\n/stats\n/reset\n/stats\n/bogus\n";
  const Output r = run_shell(quote(q3vl_exe()) + " chat --model " + quote(package) +
                             " --temperature 0 --max-new-tokens 4 --threads 1 < " + quote(script) + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[attached image"), std::string::npos) << r.out;
  // First turn encodes the image once; the second turn reuses the cache and the image.
  EXPECT_NE(r.out.find("[chat] vision calls 1, vision cache hits 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[chat] vision calls 1, vision cache hits 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[reset]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[chat] vision calls 0, vision cache hits 0, prefilled 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[unknown command /bogus"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace q3vl::testing
