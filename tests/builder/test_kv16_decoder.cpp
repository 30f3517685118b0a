// The same decoder with a float16 and a float32 KV cache, through a prefill and then
// decode steps that feed each step's present back as the next past (how the runtime runs
// it), on the tiny preset and the custom config (head_dim 24, 8:1 GQA). FP32 weights, so
// the two differ only by the cache's rounding (int4 q3vl kernels would add their int8
// activation rounding, which turns a tiny input change into whole quantization steps:
// measured 1 - cosine up to 1e-4 there; the int4 default is covered by the precision
// goldens). Each K/V element moves by at most 2^-11 of itself, so each attention output
// moves by about that relative amount, and through L layers the logits by about
// L · 2^-11 of their scale. Bounds: max |diff| <= L · 2^-11 · max |logit| and cosine
// >= 1 - 1e-5 (a relative perturbation e gives 1 - cosine ~ e^2 / 2 = 3e-6 for e =
// 5 · 2^-11). Measured 2026-12-06: max |diff| <= 1.4e-3 of max |logit| ~15 (1e-4
// relative), 1 - cosine <= 7e-9.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "decoder_runner.h"
#include "q3vl/config.h"
#include "support/similarity.h"

namespace q3vl::testing {
namespace {

builder::DecoderGraphOptions fp32(io::DType kv_cache) {
  builder::DecoderGraphOptions o;
  o.kv_cache = kv_cache;
  return o;
}

// Logits of a 9-token prefill, then of 4 decode steps on top of it.
std::vector<std::vector<float>> run(const char* checkpoint, const ModelConfig& config, io::DType kv_cache) {
  const char* suffix = kv_cache == io::DType::f16 ? "_f16" : kv_cache == io::DType::i8 ? "_i8" : "_f32";
  const auto dir = fresh_dir(std::string("kv16_decoder_") + checkpoint + suffix);
  DecoderRunner runner(checkpoint_dir(checkpoint), dir, config, fp32(kv_cache));
  const std::int64_t d = config.text.hidden_size, prompt = 9;
  std::vector<std::int64_t> positions;
  for (int r = 0; r < 3; ++r) {
    for (std::int64_t s = 0; s < prompt; ++s) positions.push_back(r == 0 ? s : 2 * s + r);  // distinct MRoPE rows
  }
  DecoderStep step = runner.run(1, prompt, random_floats(static_cast<std::size_t>(prompt * d), 70, 1.0f), positions, {}, {});
  std::vector<std::vector<float>> logits{step.logits.data};
  for (std::int64_t i = 0; i < 4; ++i) {
    const std::int64_t p = 2 * prompt + i;
    step = runner.run(1, 1, random_floats(static_cast<std::size_t>(d), 71 + static_cast<unsigned>(i), 1.0f), {p, p, p},
                      {}, step.present);
    logits.push_back(step.logits.data);
  }
  return logits;
}

// The bounds for one step: 1 - cosine <= cosine_gap; max |diff| <= relative · max |logit|.
struct Bounds {
  double cosine_gap, relative;
};

// Runs both caches on both checkpoints and checks every step's logits against `bounds`
// (given the layer count). The cache under test must really round: its logits differ from
// the float32 cache's somewhere.
void expect_tracks_float32(io::DType kv_cache, const char* tag, Bounds (*bounds)(double layers)) {
  for (const char* checkpoint : {"tiny", "custom"}) {
    const ModelConfig config = load_model_config(checkpoint_dir(checkpoint));
    const auto rounded = run(checkpoint, config, kv_cache);
    const auto full = run(checkpoint, config, io::DType::f32);
    ASSERT_EQ(rounded.size(), full.size());
    const Bounds b = bounds(static_cast<double>(config.text.num_hidden_layers));
    double largest_diff = 0.0;
    for (std::size_t i = 0; i < rounded.size(); ++i) {
      double max_diff = 0.0, max_abs = 0.0;
      for (std::size_t j = 0; j < full[i].size(); ++j) {
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(rounded[i][j] - full[i][j])));
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(full[i][j])));
      }
      const double agreement = cosine(rounded[i], full[i]);
      std::printf("[%s %s step %zu] cosine %.9f, max |diff| %.3g of max |logit| %.3g\n", tag, checkpoint, i,
                  agreement, max_diff, max_abs);
      EXPECT_GE(agreement, 1.0 - b.cosine_gap) << checkpoint << " step " << i;
      EXPECT_LE(max_diff, b.relative * max_abs) << checkpoint << " step " << i;
      largest_diff = std::max(largest_diff, max_diff);
    }
    EXPECT_GT(largest_diff, 0.0) << checkpoint << ": the " << tag << " cache changed no logit";
  }
}

TEST(Kv16Decoder, Float16CacheTracksFloat32Cache) {
  expect_tracks_float32(io::DType::f16, "kv16", [](double layers) { return Bounds{1e-5, layers * std::ldexp(1.0, -11)}; });
}

// int8 rows (a float16 scale per 32 values): each element moves by at most half a step,
// max|block| / 254 < 2^-7.99 of its block's largest value, instead of float16's 2^-11 of
// itself; by the same argument as above the logits move by about L · 2^-8 of their
// scale (bound: twice that, for keys and values both), and 1 - cosine by about
// (L · 2^-8)^2 / 2 (bound: (L · 2^-8)^2).
TEST(Kv16Decoder, Int8CacheTracksFloat32Cache) {
  expect_tracks_float32(io::DType::i8, "kv8", [](double layers) {
    const double e = layers * std::ldexp(1.0, -8);
    return Bounds{e * e, 2.0 * e};
  });
}

}  // namespace
}  // namespace q3vl::testing
