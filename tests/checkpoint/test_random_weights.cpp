// checkpoint/random_weights.h: the generator is what its header documents (a
// re-implementation below from that text), independent of thread count, has the
// moments of a centred Irwin-Hall(4) variate, and the fixture checkpoints' tensors
// have the intended scales.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string_view>

#include "checkpoint/presets.h"
#include "checkpoint/random_weights.h"
#include "checkpoint/weight_layout.h"
#include "io/dtype.h"
#include "io/safetensors.h"
#include "made_checkpoint.h"

namespace q3vl::checkpoint {
namespace {

// --- Re-implementation from random_weights.h's description --------------------
std::uint64_t reference_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t reference_fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

float reference_value(std::uint64_t seed, const WeightSpec& spec, std::uint64_t i) {
  const std::uint64_t key = reference_mix(reference_mix(seed) ^ reference_fnv1a(spec.name));
  const std::uint64_t word = reference_mix(key + (i + 1) * 0x9E3779B97F4A7C15ull);
  std::int64_t sum = 0;
  for (int k = 0; k < 4; ++k) sum += static_cast<std::int64_t>((word >> (16 * k)) & 0xFFFF);
  const double sigma = std::sqrt(4294967295.0 / 3.0);
  double value = static_cast<double>(sum - 131070) * (spec.std / sigma);
  if (spec.init == Init::one_plus) value = 1.0 + value;
  return static_cast<float>(value);
}

TEST(RandomWeights, MatchesTheDocumentedGenerator) {
  const WeightSpec specs[] = {
      {"model.language_model.embed_tokens.weight", {1000}, Init::normal, 0.4},
      {"model.visual.blocks.0.norm1.weight", {1000}, Init::one_plus, 0.1},
  };
  for (const auto& spec : specs) {
    for (const std::uint64_t seed : {0ull, 1ull, 0xFFFFFFFFFFFFFFFFull}) {
      std::vector<std::uint16_t> got(1000);
      fill_bf16(spec, seed, 5, got);
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], io::f32_to_bf16(reference_value(seed, spec, 5 + i)))
            << spec.name << " seed " << seed << " i " << i;
      }
    }
  }
  // standard_value is the unit-scale variate of the same stream ((x * (1 / s)) may
  // differ from x / s in the last bit, hence the float tolerance).
  const WeightSpec unit{"x", {1}, Init::normal, 1.0};
  const std::uint64_t key = tensor_stream_key(3, "x");
  for (std::uint64_t i = 0; i < 100; ++i) {
    EXPECT_FLOAT_EQ(standard_value(key, i), reference_value(3, unit, i));
  }
}

TEST(RandomWeights, SeedsAndNamesGiveDifferentStreams) {
  EXPECT_NE(tensor_stream_key(0, "a.weight"), tensor_stream_key(1, "a.weight"));
  EXPECT_NE(tensor_stream_key(0, "a.weight"), tensor_stream_key(0, "b.weight"));
  EXPECT_EQ(tensor_stream_key(7, "a.weight"), tensor_stream_key(7, "a.weight"));
}

TEST(RandomWeights, BytesDoNotDependOnThreadsOrBlocking) {
  const WeightSpec spec{"model.visual.pos_embed.weight", {1 << 20}, Init::normal, 0.4};
  std::vector<std::uint16_t> one(1 << 20);
  fill_bf16(spec, 42, 0, one);
  for (const unsigned threads : {2u, 3u, 7u}) {
    std::vector<std::uint16_t> many(1 << 20);
    fill_bf16_parallel(spec, 42, 0, many, threads);
    EXPECT_EQ(many, one) << threads << " threads";
  }
  // A block starting mid-tensor equals the same slice of the whole.
  std::vector<std::uint16_t> tail(1000);
  fill_bf16(spec, 42, 12345, tail);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), one.begin() + 12345));
}

// Irwin-Hall(4) centred and scaled to unit variance: mean 0, variance 1, excess
// kurtosis -6/(5*4) = -0.3, support |x| <= sqrt(12) = 3.4641.
TEST(RandomWeights, StandardValuesHaveIrwinHallMoments) {
  const std::uint64_t key = tensor_stream_key(0, "moments");
  constexpr int kCount = 1 << 20;
  double sum = 0, sum2 = 0, sum4 = 0, largest = 0;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const double x = standard_value(key, i);
    sum += x;
    sum2 += x * x;
    sum4 += x * x * x * x;
    largest = std::max(largest, std::fabs(x));
  }
  const double mean = sum / kCount;
  const double variance = sum2 / kCount - mean * mean;
  const double kurtosis = (sum4 / kCount) / (variance * variance) - 3.0;
  EXPECT_NEAR(mean, 0.0, 0.005);           // standard error 0.001
  EXPECT_NEAR(variance, 1.0, 0.01);        // standard error 0.0013
  EXPECT_NEAR(kurtosis, -0.3, 0.02);       // standard error ~0.004
  EXPECT_LE(largest, std::sqrt(12.0) + 1e-6);
  EXPECT_GT(largest, 3.0);
}

struct Moments {
  double mean = 0;
  double std = 0;
};

Moments moments(const std::vector<float>& values) {
  double sum = 0, sum2 = 0;
  for (const float v : values) {
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(values.size());
  return {sum / n, std::sqrt(sum2 / n - (sum / n) * (sum / n))};
}

// The tensors make-checkpoint writes (seed 0) have the scales of
// docs/reference/hf-reference-facts.md "Random weights that behave". Each case pools
// every tensor whose name ends with `suffix` (all drawn with the same scale).
// Tolerance on the std ratio: 0.5 % for bf16 rounding plus 4 standard errors of
// a sample std, sqrt((kurtosis_excess + 2) / (4 n)) with Irwin-Hall's -0.3.
TEST(RandomWeights, TensorsHaveTheIntendedScales) {
  struct Case {
    const char* preset;
    const char* suffix;
    double mean;
    double std;
  };
  const Case cases[] = {
      {"tiny", "model.language_model.embed_tokens.weight", 0.0, 0.4},
      {"tiny", "model.visual.pos_embed.weight", 0.0, 0.4},
      {"tiny", "patch_embed.proj.weight", 0.0, 1.0 / std::sqrt(1536.0)},
      {"tiny", "mlp.gate_proj.weight", 0.0, 1.0 / 8.0},
      {"tiny", "layers.0.mlp.down_proj.weight", 0.0, 2.0 / std::sqrt(192.0)},
      {"tiny", "layers.1.mlp.down_proj.weight", 0.0, 0.1 / std::sqrt(192.0)},
      {"tiny", "layers.2.self_attn.o_proj.weight", 0.0, 0.7 / std::sqrt(128.0)},
      {"tiny", "merger.linear_fc1.weight", 0.0, 1.0 / 16.0},
      {"tiny-untied", "lm_head.weight", 0.0, 0.4},
      {"tiny-untied", "attn.qkv.weight", 0.0, 1.0 / std::sqrt(48.0)},
      {"tiny-untied", "mlp.linear_fc2.weight", 0.0, 0.5 / std::sqrt(96.0)},
      {"tiny-untied", ".bias", 0.0, 0.1},
      {"tiny-untied", "layernorm.weight", 1.0, 0.1},
  };
  std::map<std::string, io::Checkpoint> checkpoints;
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.preset) + " *" + c.suffix);
    if (!checkpoints.count(c.preset)) {
      checkpoints.emplace(c.preset, io::Checkpoint::open(testing_support::made_checkpoint(c.preset)));
    }
    const auto& checkpoint = checkpoints.at(c.preset);
    std::vector<float> values;
    for (const auto& name : checkpoint.names()) {
      const std::string_view suffix = c.suffix;
      if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
      const auto tensor = checkpoint.tensor(name).to_f32();
      values.insert(values.end(), tensor.begin(), tensor.end());
    }
    ASSERT_GE(values.size(), 500u);  // the bounds below scale with the sample size
    const double n = static_cast<double>(values.size());
    const Moments m = moments(values);
    EXPECT_NEAR(m.mean, c.mean, 4.0 * c.std / std::sqrt(n));
    EXPECT_NEAR(m.std / c.std, 1.0, 0.005 + 4.0 * std::sqrt(1.7 / (4.0 * n))) << "std " << m.std << " n " << n;
  }
  // Tied and untied: lm_head differs from the embedding when it exists.
  const auto& untied = checkpoints.at("tiny-untied");
  EXPECT_NE(untied.tensor("lm_head.weight").to_f32(),
            untied.tensor("model.language_model.embed_tokens.weight").to_f32());
  EXPECT_FALSE(checkpoints.at("tiny").contains("lm_head.weight"));
}

}  // namespace
}  // namespace q3vl::checkpoint
