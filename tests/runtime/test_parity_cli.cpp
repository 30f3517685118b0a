// Issue #7's acceptance through the command line, on a checkpoint that is not a
// preset: `q3vl build` (FP32, by the runtime fixture) of the `custom` golden
// checkpoint (tests/reference/configs/custom.json, transformers 5.x layout), then
// `q3vl run --messages F.json --temperature 0 --json` on every golden case (single and
// two images, odd sizes, alpha and palette PNGs, video, text only, two turns) returns
// HF's greedy token ids: all 32, or up to and including the first HF near-tie (margin
// below 2 * the FP32 logit bound of test_parity.cpp), or up to an eos id from
// generation_config.json (the CLI stops there; HF's goldens never stop).
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "runtime/runtime_fixture.h"
#include "support/golden.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

constexpr float kLogitBound = 5e-4f;  // test_parity.cpp's FP32 bound
constexpr const char* kCheckpoint = "custom";

using Output = ShellOutput;

class RunCliParity : public ::testing::TestWithParam<std::string> {};

TEST_P(RunCliParity, GreedyTokenIdsEqualHf) {
  const GoldenCase c = GoldenSet::open().load_case(GetParam());
  const GoldenI64 hf = c.model_i64(kCheckpoint, "greedy_ids");
  const GoldenF32 margin = c.model_f32(kCheckpoint, "greedy_margin");
  const auto package = runtime_package(kCheckpoint);
  const Output r = run_shell(quote(q3vl_exe()) + " run --model " + quote(package) + " --messages " +
                             quote(golden_messages_file(c)) + " --temperature 0 --max-new-tokens " +
                             std::to_string(hf.numel()) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto ids = j.at("token_ids").get<std::vector<std::int64_t>>();
  ASSERT_FALSE(ids.empty());
  ASSERT_LE(ids.size(), hf.values.size());
  if (ids.size() < hf.values.size()) {
    EXPECT_EQ(j.at("finish_reason"), "stop");
  }
  std::size_t compared = 0;
  for (std::size_t s = 0; s < ids.size(); ++s) {
    ASSERT_EQ(ids[s], hf.values[s]) << c.name() << " step " << s;
    ++compared;
    if (margin.values[s] < 2 * kLogitBound) break;  // near-tie: later steps may diverge
  }
  EXPECT_EQ(j.at("usage").at("prompt_tokens"), c.input_i64("input_ids").numel());
  std::printf("[cli greedy] %s %s: %zu of %zu tokens equal to HF\n", kCheckpoint, c.name().c_str(), compared,
              ids.size());
}

INSTANTIATE_TEST_SUITE_P(Golden, RunCliParity, ::testing::ValuesIn(GoldenSet::open().case_names()),
                         [](const ::testing::TestParamInfo<std::string>& case_info) { return case_info.param; });

}  // namespace
}  // namespace q3vl::testing
