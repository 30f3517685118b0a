// Decoder graph (FP32) against the plain C++ reference decoder (text_reference.cpp), on a
// config that is not a preset; KV-cache decoding against one full pass; last-position logits.
#include <gtest/gtest.h>

#include <cmath>

#include "decoder_runner.h"
#include "text_reference.h"

namespace q3vl::testing {
namespace {

constexpr std::int64_t kTokens = 10;

struct Case {
  ModelConfig config;
  std::vector<float> embeds;      // [T, D]
  std::vector<std::int64_t> pos;  // [3, T]
  std::vector<float> deepstack;   // [K, T, D]
};

// An MRoPE-like layout: 2 text tokens, a 2x2 "image" (T fixed, H/W vary), then text.
Case make_case(bool tied) {
  Case c{custom_text_config(tied), {}, {}, {}};
  const std::int64_t D = c.config.text.hidden_size;
  c.embeds = random_floats(kTokens * D, 11, 1.0f);
  c.pos = {0, 1, 2, 2, 2, 2, 4, 5, 6, 7,   // T
           0, 1, 2, 2, 3, 3, 4, 5, 6, 7,   // H
           0, 1, 2, 3, 2, 3, 4, 5, 6, 7};  // W
  const auto taps = static_cast<std::int64_t>(c.config.vision.deepstack_visual_indexes.size());
  c.deepstack.assign(static_cast<std::size_t>(taps * kTokens * D), 0.0f);
  const auto visual = random_floats(taps * 4 * D, 12, 0.5f);
  for (std::int64_t k = 0; k < taps; ++k) {
    for (std::int64_t s = 2; s < 6; ++s) {  // visual positions only
      for (std::int64_t d = 0; d < D; ++d) c.deepstack[(k * kTokens + s) * D + d] = visual[(k * 4 + s - 2) * D + d];
    }
  }
  return c;
}

std::filesystem::path checkpoint_for(const ModelConfig& config, const std::string& name) {
  auto dir = fresh_dir(name);
  write_text_checkpoint(dir / "ckpt", config, 7);
  return dir;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

void expect_matches_reference(bool tied) {
  const Case c = make_case(tied);
  const auto dir = checkpoint_for(c.config, tied ? "decoder_ref_tied" : "decoder_ref_untied");
  builder::DecoderGraphOptions options;
  options.logits = builder::LogitsMode::all;
  std::filesystem::create_directories(dir / "graph");
  DecoderRunner runner(dir / "ckpt", dir / "graph", c.config, options);
  auto step = runner.run(1, kTokens, c.embeds, c.pos, c.deepstack, {});

  auto checkpoint = io::Checkpoint::open(dir / "ckpt");
  const auto ref = reference_text_logits(checkpoint, c.config, c.embeds, c.pos, c.deepstack, kTokens);
  ASSERT_EQ(step.logits.data.size(), ref.size());
  double max_diff = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) max_diff = std::max(max_diff, std::abs(ref[i] - step.logits.data[i]));
  const double bound = 2e-4 * std::max(1.0, max_abs(ref));
  EXPECT_LE(max_diff, bound) << "tied=" << tied << " max|ref|=" << max_abs(ref);
  std::printf("[decoder vs C++ reference] tied=%d max|ref|=%.3f max|diff|=%.3g\n", tied, max_abs(ref), max_diff);
}

TEST(Decoder, Fp32MatchesCppReferenceUntied) { expect_matches_reference(false); }
TEST(Decoder, Fp32MatchesCppReferenceTied) { expect_matches_reference(true); }

TEST(Decoder, DeepstackChangesOnlyVisualAndLaterPositions) {
  const Case c = make_case(false);
  const auto dir = checkpoint_for(c.config, "decoder_deepstack");
  builder::DecoderGraphOptions options;
  options.logits = builder::LogitsMode::all;
  std::filesystem::create_directories(dir / "graph");
  DecoderRunner runner(dir / "ckpt", dir / "graph", c.config, options);
  auto with = runner.run(1, kTokens, c.embeds, c.pos, c.deepstack, {});
  auto without = runner.run(1, kTokens, c.embeds, c.pos, {}, {});
  const std::int64_t V = c.config.text.vocab_size;
  for (std::int64_t s = 0; s < kTokens; ++s) {
    double diff = 0;
    for (std::int64_t v = 0; v < V; ++v) diff = std::max(diff, double(std::abs(with.logits.data[s * V + v] - without.logits.data[s * V + v])));
    if (s < 2) EXPECT_EQ(diff, 0.0) << "position " << s;  // causal: before the visual tokens
    else EXPECT_GT(diff, 1e-3) << "position " << s;
  }
}

TEST(Decoder, KvCacheDecodeEqualsFullPass) {
  const Case c = make_case(false);
  const auto dir = checkpoint_for(c.config, "decoder_kv");
  builder::DecoderGraphOptions options;
  options.logits = builder::LogitsMode::all;
  std::filesystem::create_directories(dir / "graph");
  DecoderRunner runner(dir / "ckpt", dir / "graph", c.config, options);
  const std::int64_t D = c.config.text.hidden_size, V = c.config.text.vocab_size;
  const auto taps = static_cast<std::int64_t>(c.config.vision.deepstack_visual_indexes.size());
  auto full = runner.run(1, kTokens, c.embeds, c.pos, c.deepstack, {});

  // Prefill the first 6 tokens (all visual ones, with DeepStack), then decode 4 tokens one by one.
  const std::int64_t prefill = 6;
  auto slice_pos = [&](std::int64_t begin, std::int64_t count) {
    std::vector<std::int64_t> p;
    for (std::int64_t r = 0; r < 3; ++r) {
      for (std::int64_t s = begin; s < begin + count; ++s) p.push_back(c.pos[r * kTokens + s]);
    }
    return p;
  };
  std::vector<float> ds_prefill;
  for (std::int64_t k = 0; k < taps; ++k) {
    ds_prefill.insert(ds_prefill.end(), c.deepstack.begin() + k * kTokens * D, c.deepstack.begin() + (k * kTokens + prefill) * D);
  }
  auto first = runner.run(1, prefill, std::vector<float>(c.embeds.begin(), c.embeds.begin() + prefill * D),
                          slice_pos(0, prefill), ds_prefill, {});
  double max_diff = 0, max_ref = 0;
  for (std::int64_t i = 0; i < prefill * V; ++i) {
    max_diff = std::max(max_diff, double(std::abs(first.logits.data[i] - full.logits.data[i])));
  }
  std::vector<HostF32> cache = first.present;
  for (std::int64_t s = prefill; s < kTokens; ++s) {
    auto step = runner.run(1, 1, std::vector<float>(c.embeds.begin() + s * D, c.embeds.begin() + (s + 1) * D),
                           slice_pos(s, 1), {}, cache);
    for (std::int64_t v = 0; v < V; ++v) {
      max_diff = std::max(max_diff, double(std::abs(step.logits.data[v] - full.logits.data[s * V + v])));
      max_ref = std::max(max_ref, double(std::abs(full.logits.data[s * V + v])));
    }
    EXPECT_EQ(step.present[0].shape[2], s + 1);
    cache = step.present;
  }
  std::printf("[kv cache] max|logit|=%.3f max|diff| vs full pass=%.3g\n", max_ref, max_diff);
  EXPECT_LE(max_diff, 1e-5 * std::max(1.0, max_ref));
}

TEST(Decoder, LastLogitsModeEqualsLastRowOfAll) {
  const Case c = make_case(true);
  const auto dir = checkpoint_for(c.config, "decoder_last");
  std::filesystem::create_directories(dir / "all");
  std::filesystem::create_directories(dir / "last");
  builder::DecoderGraphOptions all_options;
  all_options.logits = builder::LogitsMode::all;
  DecoderRunner all(dir / "ckpt", dir / "all", c.config, all_options);
  DecoderRunner last(dir / "ckpt", dir / "last", c.config, builder::DecoderGraphOptions{});
  auto a = all.run(1, kTokens, c.embeds, c.pos, c.deepstack, {});
  auto l = last.run(1, kTokens, c.embeds, c.pos, c.deepstack, {});
  const std::int64_t V = c.config.text.vocab_size;
  ASSERT_EQ(l.logits.shape, (std::vector<std::int64_t>{1, 1, V}));
  for (std::int64_t v = 0; v < V; ++v) EXPECT_NEAR(l.logits.data[v], a.logits.data[(kTokens - 1) * V + v], 1e-5);
}

}  // namespace
}  // namespace q3vl::testing
