// Block quantizer: hand-worked packing, error bounds, mse never worse than rtn, and
// MatMulNBits in ONNX Runtime computing exactly x * dequantize(W)^T (checks the layout).
#include <gtest/gtest.h>

#include <cmath>

#include "builder/graph.h"
#include "builder/linear.h"
#include "builder/quantize.h"
#include "decoder_runner.h"
#include "ort_test_util.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

TEST(Quantize, HandWorkedInt4SymmetricBlock) {
  // -7 .. 7: the full grid (scale 7/8) would clip +7 by more than half a step, so the plain
  // grid: scale 1, zero point 8, q = w + 8.
  std::vector<float> w = {-7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 0};
  QuantOptions o;
  o.block_size = 16;
  o.method = QuantMethod::rtn;
  const auto q = quantize_blockwise(w, 1, 16, o);
  const std::vector<std::uint8_t> expected = {0x21, 0x43, 0x65, 0x87, 0xA9, 0xCB, 0xED, 0x8F};
  EXPECT_EQ(q.packed, expected);
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_FLOAT_EQ(q.scales[0], 1.0f);
  EXPECT_TRUE(q.zero_points.empty());
  EXPECT_EQ(dequantize(q), w);
}

TEST(Quantize, HandWorkedInt4SymmetricFullGrid) {
  // -8 .. 7: the largest magnitude (-8) lands on the extra level, scale 1, q = w + 8; all 16
  // levels are used.
  std::vector<float> w(16);
  for (int i = 0; i < 16; ++i) w[i] = static_cast<float>(i - 8);
  QuantOptions o;
  o.block_size = 16;
  o.method = QuantMethod::rtn;
  auto q = quantize_blockwise(w, 1, 16, o);
  EXPECT_EQ(q.packed, (std::vector<std::uint8_t>{0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE}));
  EXPECT_FLOAT_EQ(q.scales[0], 1.0f);
  EXPECT_EQ(dequantize(q), w);
  // Mirrored (8 .. -7): the extreme is positive, so the scale is -1 and q = 8 - w.
  for (float& x : w) x = -x;
  q = quantize_blockwise(w, 1, 16, o);
  EXPECT_EQ(q.packed, (std::vector<std::uint8_t>{0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE}));
  EXPECT_FLOAT_EQ(q.scales[0], -1.0f);
  EXPECT_EQ(dequantize(q), w);
}

TEST(Quantize, HandWorkedInt8AsymmetricBlock) {
  // Range [0, 2.55] -> scale 0.01, zero point 0; q = round(w / 0.01).
  std::vector<float> w(16);
  for (int i = 0; i < 16; ++i) w[i] = 0.17f * static_cast<float>(i);  // 0 .. 2.55
  QuantOptions o;
  o.bits = 8;
  o.block_size = 16;
  o.symmetric = false;
  o.method = QuantMethod::rtn;
  const auto q = quantize_blockwise(w, 1, 16, o);
  ASSERT_EQ(q.zero_points.size(), 1u);
  EXPECT_EQ(q.zero_points[0], 0);
  EXPECT_NEAR(q.scales[0], 0.01f, 1e-7f);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(q.packed[i], 17 * i) << i;
}

TEST(Quantize, RtnErrorIsAtMostHalfAStep) {
  const auto w = testing::random_floats(8 * 100, 3, 1.0f);  // K = 100: last block padded
  for (int bits : {4, 8}) {
    for (bool symmetric : {true, false}) {
      QuantOptions o;
      o.bits = bits;
      o.symmetric = symmetric;
      o.method = QuantMethod::rtn;
      const auto q = quantize_blockwise(w, 8, 100, o);
      const auto d = dequantize(q);
      for (std::int64_t r = 0; r < 8; ++r) {
        for (std::int64_t c = 0; c < 100; ++c) {
          const float step = std::abs(q.scales[r * q.k_blocks + c / 32]);
          EXPECT_LE(std::abs(d[r * 100 + c] - w[r * 100 + c]), 0.5f * step * (1 + 1e-5f))
              << "bits " << bits << " symmetric " << symmetric << " at " << r << "," << c;
        }
      }
    }
  }
}

TEST(Quantize, MseSearchNeverWorseThanRtnPerBlockAndBetterOverall) {
  const auto w = testing::random_floats(64 * 256, 5, 1.0f);
  for (bool symmetric : {true, false}) {
    QuantOptions o;
    o.symmetric = symmetric;
    o.method = QuantMethod::rtn;
    const auto rtn = dequantize(quantize_blockwise(w, 64, 256, o));
    o.method = QuantMethod::mse;
    const auto mse = dequantize(quantize_blockwise(w, 64, 256, o));
    double total_rtn = 0, total_mse = 0;
    for (std::size_t b = 0; b < w.size(); b += 32) {
      double er = 0, em = 0;
      for (std::size_t i = b; i < b + 32; ++i) {
        er += (w[i] - rtn[i]) * double(w[i] - rtn[i]);
        em += (w[i] - mse[i]) * double(w[i] - mse[i]);
      }
      EXPECT_LE(em, er * (1 + 1e-9)) << "block " << b / 32;
      total_rtn += er;
      total_mse += em;
    }
    std::printf("[quantize int4 bs32 symmetric=%d] squared error rtn %.4f mse %.4f (%.1f%% lower)\n", symmetric,
                total_rtn, total_mse, 100 * (1 - total_mse / total_rtn));
    EXPECT_LT(total_mse, 0.95 * total_rtn);
  }
}

TEST(Quantize, ThreadCountDoesNotChangeBytes) {
  const auto w = testing::random_floats(37 * 64, 9, 1.0f);
  QuantOptions o;
  o.threads = 1;
  const auto a = quantize_blockwise(w, 37, 64, o);
  o.threads = 4;
  const auto b = quantize_blockwise(w, 37, 64, o);
  EXPECT_EQ(a.packed, b.packed);
  EXPECT_EQ(a.scales, b.scales);
}

TEST(Quantize, BadOptionsAreUsageErrors) {
  const std::vector<float> w(64, 1.0f);
  QuantOptions o;
  o.block_size = 24;
  EXPECT_THROW(quantize_blockwise(w, 1, 64, o), Error);
  o.block_size = 32;
  o.bits = 3;
  EXPECT_THROW(quantize_blockwise(w, 1, 64, o), Error);
}

// y = x W^T through linear() in ORT vs the same product with the dequantized W in C++.
void expect_matmul_nbits_matches(WeightPrecision precision, bool symmetric, std::int64_t block) {
  constexpr std::int64_t N = 24, K = 80, rows = 3;  // K = 80: not a multiple of 32 or 64
  const auto dir = testing::fresh_dir("matmul_nbits");
  const auto w = testing::random_floats(N * K, 21, 0.5f);
  const auto bias = testing::random_floats(N, 22, 0.5f);
  LinearFormat format;
  format.precision = precision;
  format.quant.symmetric = symmetric;
  format.quant.block_size = block;
  format.kernels = LinearKernels::ort;  // this test checks MatMulNBits' layout
  {
    Graph g("lin", dir / "lin.onnx.data");
    Value x = g.input("x", DType::f32, {"rows", K});
    auto scope = g.scope("proj");
    Value y = linear(g, x, w, N, K, format, bias);
    g.output(y, "y", DType::f32, {"rows", N});
    g.save(dir / "lin.onnx");
  }
  QuantOptions q = format.quant;
  q.bits = precision == WeightPrecision::int8 ? 8 : 4;
  const auto deq = dequantize(quantize_blockwise(w, N, K, q));

  runtime::OrtSession session("lin", dir / "lin.onnx");
  testing::HostF32 x{testing::random_floats(rows * K, 23, 1.0f), {rows, K}};
  std::vector<Ort::Value> in;
  in.push_back(testing::to_ort(x));
  const auto y = testing::to_host(session.run({"x"}, in, {"y"})[0]);
  double max_diff = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t n = 0; n < N; ++n) {
      double acc = bias[n];
      for (std::int64_t k = 0; k < K; ++k) acc += double(x.data[r * K + k]) * deq[n * K + k];
      max_diff = std::max(max_diff, std::abs(acc - y.data[r * N + n]));
    }
  }
  EXPECT_LT(max_diff, 1e-5) << to_string(precision) << " symmetric " << symmetric << " block " << block;
}

TEST(Quantize, MatMulNBitsInOrtEqualsDequantizedMatmul) {
  for (auto p : {WeightPrecision::int4, WeightPrecision::int8}) {
    for (bool symmetric : {true, false}) {
      for (std::int64_t block : {16, 32, 64}) expect_matmul_nbits_matches(p, symmetric, block);
    }
  }
}

}  // namespace
}  // namespace q3vl::builder
