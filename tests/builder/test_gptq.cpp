// GPTQ and its calibration statistics: hand-worked H, the identity case equal to mse,
// lower output error than mse under correlated inputs, thread-count independence, and
// errors for malformed input.
#include <gtest/gtest.h>

#include <random>

#include "builder/calibration_stats.h"
#include "builder/gptq.h"
#include "builder/quantize.h"
#include "q3vl/error.h"
#include "ort_test_util.h"

namespace q3vl::builder {
namespace {

using testing::fresh_dir;

std::vector<float> gaussian(std::size_t n, unsigned seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// sum over rows of (w - q) H (w - q)^T: the layer's output error summed over the inputs
// whose second moments H holds.
double output_error(const std::vector<float>& w, const std::vector<float>& q, const std::vector<double>& h,
                    std::int64_t n, std::int64_t k) {
  double total = 0.0;
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t i = 0; i < k; ++i) {
      const double di = w[r * k + i] - q[r * k + i];
      for (std::int64_t j = 0; j < k; ++j) total += di * h[i * k + j] * (w[r * k + j] - q[r * k + j]);
    }
  }
  return total;
}

// Inputs x = z A with one fixed mixing A (any seed draws from the same distribution):
// strongly correlated features, as real activations are.
std::vector<float> correlated_inputs(std::int64_t rows, std::int64_t k, unsigned seed) {
  const auto z = gaussian(static_cast<std::size_t>(rows * k), seed);
  const auto a = gaussian(static_cast<std::size_t>(k * k), 1234, 1.0f / std::sqrt(static_cast<float>(k)));
  std::vector<float> x(static_cast<std::size_t>(rows * k), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < k; ++i) {
      float s = 0.0f;
      for (std::int64_t j = 0; j < k; ++j) s += z[r * k + j] * a[j * k + i];
      // a few channels much larger than the rest, as in real LLM activations
      x[r * k + i] = s * (i % 17 == 3 ? 6.0f : 1.0f);
    }
  }
  return x;
}

TEST(CalibrationStats, HessianIsTheSumOfOuterProducts) {
  const auto dir = fresh_dir("calib_stats");
  CalibrationStats stats(dir);
  // Rows appended in two calls: [1, 2] then [3, 4] and [0, -1].
  stats.append("layer.proj", std::vector<float>{1, 2}, 2);
  stats.append("layer.proj", std::vector<float>{3, 4, 0, -1}, 2);
  EXPECT_EQ(stats.rows("layer.proj"), 3);
  // 1*1 + 3*3 + 0 = 10;  1*2 + 3*4 + 0 = 14;  2*2 + 4*4 + 1 = 21
  EXPECT_EQ(stats.hessian("layer.proj", 2), (std::vector<double>{10, 14, 14, 21}));
  EXPECT_THROW(stats.append("layer.proj", std::vector<float>{1, 2, 3}, 3), Error);
  EXPECT_THROW(stats.hessian("layer.proj", 3), Error);
  EXPECT_THROW(stats.hessian("other", 2), Error);
}

TEST(Gptq, IdentityStatisticsGiveTheMseResult) {
  // H = c I: no column's error can be cancelled by another, so nothing moves.
  const std::int64_t n = 24, k = 96;
  const auto w = gaussian(static_cast<std::size_t>(n * k), 7, 0.05f);
  std::vector<double> h(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t i = 0; i < k; ++i) h[i * k + i] = 3.5;
  for (const bool symmetric : {true, false}) {
    for (const int bits : {4, 8}) {
      QuantOptions o;
      o.bits = bits;
      o.symmetric = symmetric;
      o.block_size = 32;
      o.method = QuantMethod::mse;
      const auto mse = quantize_blockwise(w, n, k, o);
      o.method = QuantMethod::gptq;
      const auto g = quantize_gptq(w, n, k, h, o);
      EXPECT_EQ(g.packed, mse.packed) << bits << symmetric;
      EXPECT_EQ(g.scales, mse.scales);
      EXPECT_EQ(g.zero_points, mse.zero_points);
    }
  }
}

TEST(Gptq, CorrelatedInputsGiveLowerOutputErrorThanMse) {
  const std::int64_t n = 64, k = 128, rows = 1024;
  const auto w = gaussian(static_cast<std::size_t>(n * k), 11, 1.0f / std::sqrt(128.0f));
  const auto x = correlated_inputs(rows, k, 21);
  const auto dir = fresh_dir("gptq_corr");
  CalibrationStats stats(dir);
  stats.append("proj", x, k);
  const auto h = stats.hessian("proj", k);
  // Held-out inputs from the same distribution score the result.
  CalibrationStats test_stats(dir / "test");
  test_stats.append("proj", correlated_inputs(rows, k, 99), k);
  const auto h_test = test_stats.hessian("proj", k);
  struct Format {
    const char* name;
    int bits;
    WeightGrid grid;
  };
  for (const Format f : {Format{"int4", 4, WeightGrid::uniform}, Format{"nl4", 4, WeightGrid::nl},
                         Format{"int5", 5, WeightGrid::uniform}, Format{"int6", 6, WeightGrid::uniform},
                         Format{"int8", 8, WeightGrid::uniform}}) {
    QuantOptions o;
    o.bits = f.bits;
    o.grid = f.grid;
    o.block_size = 32;
    o.method = QuantMethod::mse;
    const auto mse = dequantize(quantize_blockwise(w, n, k, o));
    o.method = QuantMethod::gptq;
    const auto g = dequantize(quantize_gptq(w, n, k, h, o));
    const double e_mse = output_error(w, mse, h_test, n, k), e_gptq = output_error(w, g, h_test, n, k);
    std::printf("[gptq] %s held-out output error: mse %.4g, gptq %.4g (ratio %.3f)\n", f.name, e_mse, e_gptq,
                e_gptq / e_mse);
    // Measured 2026-12-05: ratio 0.502 (int4) and 0.541 (int8). A GPTQ that moved errors
    // the wrong way, or along the wrong factor, measures above 1.
    EXPECT_LT(e_gptq, 0.6 * e_mse) << f.name;
  }
}

TEST(Gptq, SameBytesForAnyThreadCountAndPartialBlocks) {
  const std::int64_t n = 37, k = 80;  // 80 = 2.5 blocks of 32
  const auto w = gaussian(static_cast<std::size_t>(n * k), 5, 0.1f);
  const auto dir = fresh_dir("gptq_threads");
  CalibrationStats stats(dir);
  stats.append("p", correlated_inputs(300, k, 8), k);
  const auto h = stats.hessian("p", k);
  QuantOptions o;
  o.block_size = 32;
  o.method = QuantMethod::gptq;
  o.threads = 1;
  const auto one = quantize_gptq(w, n, k, h, o);
  o.threads = 3;
  const auto three = quantize_gptq(w, n, k, h, o);
  EXPECT_EQ(one.packed, three.packed);
  EXPECT_EQ(one.scales, three.scales);
  // Every weight still lands on its block's grid: dequantized values are codes x scale.
  const auto dq = dequantize(one);
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t c = 0; c < k; ++c) {
      const float s = one.scales[r * one.k_blocks + c / 32];
      const float level = dq[r * k + c] / s;
      EXPECT_NEAR(level, std::nearbyint(level), 1e-4) << r << "," << c;
    }
  }
}

TEST(Gptq, UnseenInputsAndBadStatistics) {
  const std::int64_t n = 8, k = 32;
  const auto w = gaussian(static_cast<std::size_t>(n * k), 3, 0.1f);
  QuantOptions o;
  o.block_size = 32;
  o.method = QuantMethod::gptq;
  // Inputs 0..15 seen, 16..31 never: still a valid result (those columns count as average).
  std::vector<double> h(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t i = 0; i < 16; ++i) h[i * k + i] = 2.0;
  const auto q = quantize_gptq(w, n, k, h, o);
  const auto dq = dequantize(q);
  for (std::size_t i = 0; i < dq.size(); ++i) EXPECT_NEAR(dq[i], w[i], 0.1) << i;
  // No statistics at all: plain mse.
  std::vector<double> zeros(static_cast<std::size_t>(k * k), 0.0);
  o.method = QuantMethod::mse;
  const auto mse = quantize_blockwise(w, n, k, o);
  o.method = QuantMethod::gptq;
  EXPECT_EQ(quantize_gptq(w, n, k, zeros, o).packed, mse.packed);
  // Wrong sizes, non-finite statistics.
  EXPECT_THROW(quantize_gptq(w, n, k, std::vector<double>(10), o), Error);
  EXPECT_THROW(quantize_gptq(std::vector<float>(5), n, k, h, o), Error);
  std::vector<double> nan = h;
  nan[0] = std::nan("");
  EXPECT_THROW(quantize_gptq(w, n, k, nan, o), Error);
  // quantize_blockwise refuses gptq: it has no statistics.
  EXPECT_THROW(quantize_blockwise(w, n, k, o), Error);
}

}  // namespace
}  // namespace q3vl::builder
