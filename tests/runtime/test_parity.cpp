// Parity of the whole runtime pipeline with Hugging Face transformers 5.23 (float32, eager)
// on every committed golden case (tests/goldens/model, made by
// tests/reference/make_goldens.py) with the FP32 packages of the presets tiny and
// tiny-untied and of `custom` (not a preset: tests/reference/configs/custom.json, a
// transformers 5.x config with MQA, head_dim 24, mrope_section [5, 4, 3], one
// DeepStack tap, a 16x16 position-embedding grid):
//   - prompt: input_ids and MRoPE position ids / rope delta identical to HF's processor +
//     get_rope_index (placeholder expansion, video timestamps, multi-turn);
//   - prefill logits within kLogitBound of HF's (max abs difference);
//   - greedy: 32 token ids identical to HF, or up to and including the first step whose
//     HF top-1/top-2 margin is below 2 * kLogitBound (past a near-tie, float rounding may
//     legitimately pick the other token).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>

#include "q3vl/chat.h"
#include "q3vl/model.h"
#include "runtime/decoder_runner.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/runtime_fixture.h"
#include "runtime/vision_features.h"
#include "support/golden.h"

namespace q3vl::testing {
namespace {

// FP32 logit error bound: max |our prefill logits - HF's|. Measured on this suite (all
// cases, both presets, ORT default threads, 2026-11-23): 1.25e-5 .. 2.38e-4, largest for
// tiny-untied image_rgba / image_odd (max |logit| ~17, so ~1.4e-5 relative: float32
// summation order through the vision encoder, DeepStack and 4 decoder layers). The bound
// is twice the largest measurement, for thread-count-dependent summation order.
// custom (measured 2026-11-23, after the bound was set): 1.9e-5 (text_only) .. 3.25e-4
// (image_odd), max |logit| ~14-17.
constexpr float kLogitBound = 5e-4f;

struct ParityParam {
  std::string preset;
  std::string name;
};

// gtest prints a parameter it has no printer for as raw bytes in every test's name line.
void PrintTo(const ParityParam& p, std::ostream* out) { *out << p.preset << "/" << p.name; }

std::vector<ParityParam> all_params() {
  std::vector<ParityParam> params;
  const GoldenSet set = GoldenSet::open();
  for (const auto& preset : golden_checkpoints(set)) {
    for (const auto& name : set.case_names()) params.push_back({preset, name});
  }
  return params;
}

class Parity : public ::testing::TestWithParam<ParityParam> {};

// The runtime's prompt for a golden case (and the media it holds, which must outlive it).
struct BuiltPrompt {
  std::vector<runtime::PromptMedium> images, videos;
  runtime::Prompt prompt;
};
BuiltPrompt build(const Model& model, runtime::VisionCache& cache, const GoldenCase& c) {
  BuiltPrompt out;
  runtime::VisionRunStats stats;
  const auto messages = golden_messages(c);
  const GenerateOptions options = model.default_options();
  cache.collect(messages, options, out.images, out.videos, stats);
  out.prompt = runtime::build_prompt(model.parts(), messages, options, out.images, out.videos);
  return out;
}

TEST_P(Parity, PromptIdsAndPositionsEqualHf) {
  const auto& p = GetParam();
  const GoldenCase c = GoldenSet::open().load_case(p.name);
  const auto model = runtime_model(p.preset);
  runtime::VisionCache cache(model->parts());
  const BuiltPrompt built = build(*model, cache, c);
  const GoldenI64 ids = c.input_i64("input_ids");
  ASSERT_EQ(built.prompt.ids, ids.values) << p.name;
  const GoldenI64 positions = c.model_i64(p.preset, "position_ids");  // [3, 1, T]
  ASSERT_EQ(built.prompt.positions.ids, positions.values) << p.name;
  EXPECT_EQ(built.prompt.positions.rope_delta, c.model_i64(p.preset, "rope_deltas").values.at(0));
}

TEST_P(Parity, PrefillLogitsWithinBound) {
  const auto& p = GetParam();
  const GoldenCase c = GoldenSet::open().load_case(p.name);
  const auto model = runtime_model(p.preset);
  runtime::VisionCache cache(model->parts());
  const BuiltPrompt built = build(*model, cache, c);
  const GoldenF32 hf = c.model_f32(p.preset, "prefill_logits");
  // Whole prompt at once, and in chunks of 7 tokens (DeepStack sliced per chunk).
  for (const std::int64_t chunk : {std::int64_t{1} << 20, std::int64_t{7}}) {
    runtime::DecoderRunner runner(model->parts());
    runner.cache().reserve(static_cast<std::int64_t>(built.prompt.ids.size()));
    const auto logits = runtime::prefill(runner, built.prompt, 0, chunk);
    ASSERT_EQ(static_cast<std::int64_t>(logits.size()), hf.numel());
    float err = 0.0f, scale = 0.0f;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      err = std::max(err, std::abs(logits[i] - hf.values[i]));
      scale = std::max(scale, std::abs(hf.values[i]));
    }
    std::printf("[logit error] %s %s chunk %lld: max|ours-HF| = %.3g (max|logit| %.3g)\n", p.preset.c_str(),
                p.name.c_str(), static_cast<long long>(std::min<std::int64_t>(chunk, 1 << 20)), err, scale);
    EXPECT_LE(err, kLogitBound) << p.preset << " " << p.name << " chunk " << chunk;
  }
}

TEST_P(Parity, GreedyTokensEqualHf) {
  const auto& p = GetParam();
  const GoldenCase c = GoldenSet::open().load_case(p.name);
  const auto model = runtime_model(p.preset);
  const GoldenI64 hf_ids = c.model_i64(p.preset, "greedy_ids");
  const GoldenF32 margin = c.model_f32(p.preset, "greedy_margin");
  const GenerateResult r = generate(model, golden_messages(c), greedy_options(*model, hf_ids.numel()));
  ASSERT_EQ(r.token_ids.size(), hf_ids.values.size());
  EXPECT_EQ(r.finish_reason, FinishReason::length);
  EXPECT_EQ(r.usage.prompt_tokens, c.input_i64("input_ids").numel());
  std::size_t compared = 0;
  for (std::size_t s = 0; s < hf_ids.values.size(); ++s) {
    ASSERT_EQ(r.token_ids[s], hf_ids.values[s]) << p.preset << " " << p.name << " step " << s;
    ++compared;
    if (margin.values[s] < 2 * kLogitBound) break;  // near-tie: the next steps may diverge
  }
  std::printf("[greedy] %s %s: %zu tokens equal to HF\n", p.preset.c_str(), p.name.c_str(), compared);
}

// The tiny FP32 package with an int8 KV cache (--kv-cache int8): greedy ids equal HF's up
// to the first near-tie, where a near-tie is now judged against the cache's own error
// on top of kLogitBound: each layer's K/V rows move by at most half an int8 step,
// 2^-8 of their block's largest value, which moves the logits by about L · 2^-8 of their
// scale (tests/builder/test_kv16_decoder.cpp; bound there: twice that).
TEST(ParityKvInt8, GreedyTokensEqualHfUpToTheCacheBound) {
  const auto model = runtime_model("tiny:kv8");
  ASSERT_EQ(model->manifest().kv_cache_dtype, "int8");
  const GoldenSet set = GoldenSet::open();
  const double layers = static_cast<double>(model->manifest().num_hidden_layers);
  std::size_t total = 0;
  for (const auto& name : set.case_names()) {
    const GoldenCase c = set.load_case(name);
    const GoldenI64 hf_ids = c.model_i64("tiny", "greedy_ids");
    const GoldenF32 margin = c.model_f32("tiny", "greedy_margin");
    const GenerateResult r = generate(model, golden_messages(c), greedy_options(*model, hf_ids.numel()));
    ASSERT_EQ(r.token_ids.size(), hf_ids.values.size()) << name;
    std::size_t compared = 0;
    for (std::size_t s = 0; s < hf_ids.values.size(); ++s) {
      ASSERT_EQ(r.token_ids[s], hf_ids.values[s]) << name << " step " << s;
      ++compared;
      // max |logit| of these models is below 20 (kLogitBound's note).
      const double bound = kLogitBound + 2.0 * layers * std::ldexp(1.0, -8) * 20.0;
      if (margin.values[s] < 2 * bound) break;
    }
    std::printf("[greedy kv8] %s: %zu tokens equal to HF\n", name.c_str(), compared);
    total += compared;
  }
  EXPECT_GE(total, set.case_names().size());
}

INSTANTIATE_TEST_SUITE_P(Golden, Parity, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<ParityParam>& param_info) {
                           std::string name = param_info.param.preset + "_" + param_info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace q3vl::testing
