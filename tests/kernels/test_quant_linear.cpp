// q3vl.QuantLinear on every ISA path this machine has, in the spirit of llama.cpp's
// test-backend-ops: random shapes (M = 1 .. 600, K and N not multiples of the block or
// the 16-row tile, odd N), every weight format (4-, 5-, 6-, 8-bit uniform symmetric and
// asymmetric, nl4), blocks 32, 64 and 128, each compared with
//   (a) the same quantized math in double (quant_reference.h): the int32 block sums are
//       exact, so only float rounding may differ (1e-5 of the sum of |terms|);
//   (b) the float matmul with the original weights, within the weight + activation
//       quantization error bound (triangle inequality, per output);
// Each failure prints its case.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "kernels/dispatch.h"
#include "kernels/pack.h"
#include "kernels/quant_linear.h"
#include "quant_reference.h"

namespace q3vl::testing {
namespace {

struct Shape {
  std::int64_t n, k;
};
// K a multiple of both blocks; K not a multiple of 128 (nor of 32); N odd, below one tile,
// not a multiple of 16.
constexpr Shape kShapes[] = {{37, 256}, {100, 77}, {16, 200}, {9, 416}};
constexpr std::int64_t kRows[] = {1, 2, 3, 7, 16, 64, 600};

struct Format {
  int bits;
  kernels::WeightGrid grid;
  bool symmetric;
};
constexpr Format kFormats[] = {
    {4, kernels::WeightGrid::uniform, true}, {4, kernels::WeightGrid::uniform, false},
    {5, kernels::WeightGrid::uniform, true}, {5, kernels::WeightGrid::uniform, false},
    {6, kernels::WeightGrid::uniform, true}, {6, kernels::WeightGrid::uniform, false},
    {8, kernels::WeightGrid::uniform, true}, {8, kernels::WeightGrid::uniform, false},
    {4, kernels::WeightGrid::nl, true}};

std::string describe(kernels::Isa isa, const Format& f, std::int64_t block, std::int64_t m, const Shape& s) {
  std::ostringstream out;
  out << "isa=" << kernels::to_string(isa) << " bits=" << f.bits << " grid=" << kernels::to_string(f.grid)
      << (f.symmetric ? " symmetric" : " asymmetric") << " block=" << block << " M=" << m << " N=" << s.n
      << " K=" << s.k;
  return out.str();
}

class QuantLinearIsa : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    if (!kernels::isa_supported(GetParam())) GTEST_SKIP() << kernels::to_string(GetParam()) << " not on this CPU";
    kernels::force_isa(GetParam());
  }
  void TearDown() override { kernels::force_isa(std::nullopt); }
};

TEST_P(QuantLinearIsa, MatchesDoubleReferenceAndFloatMatmul) {
  unsigned seed = 1;
  int cases = 0;
  for (const Format& f : kFormats) {
    for (std::int64_t block : {32, 64, 128}) {
      for (std::int64_t m : kRows) {
        // Big M only on one shape and one block per format (keeps the suite at seconds);
        // block 64 on the small M only.
        for (const Shape& s : kShapes) {
          if (m == 600 && (s.n != 37 || block != 128)) continue;
          if (block == 64 && m > 7) continue;
          const std::string label = describe(GetParam(), f, block, m, s);
          const bool with_bias = seed % 2 == 0;
          const LinearCase c = make_case(m, s.n, s.k, f.bits, block, f.symmetric, with_bias, seed++, f.grid);
          const Reference ref = reference(c);
          const kernels::PackedMatrix p = kernels::pack(c.q);
          std::vector<float> y(static_cast<std::size_t>(m * s.n), -1.0f);
          kernels::quant_linear(p.view(), c.x.data(), m, with_bias ? c.bias.data() : nullptr, y.data());
          int bad_exact = 0, bad_float = 0;
          for (std::size_t i = 0; i < y.size(); ++i) {
            const double err = std::fabs(y[i] - ref.y[i]);
            if (err > ref.rounding[i] && bad_exact++ < 3) {
              ADD_FAILURE() << label << " output " << i << ": " << y[i] << " vs double reference " << ref.y[i]
                            << " (|diff| " << err << " > " << ref.rounding[i] << ")";
            }
            const double float_err = std::fabs(y[i] - ref.float_matmul[i]);
            if (float_err > ref.float_bound[i] && bad_float++ < 3) {
              ADD_FAILURE() << label << " output " << i << ": " << y[i] << " vs float matmul "
                            << ref.float_matmul[i] << " (|diff| " << float_err << " > bound " << ref.float_bound[i]
                            << ")";
            }
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 9 * (2 * 6 * 4 + 1 + 4 * 4));
}

// The int32 sums are exact on every path, so paths agree to float rounding of the
// combination: check them against each other (tighter than against the reference).
TEST(QuantLinear, IsaPathsAgree) {
  for (const Format& f : kFormats) {
    const LinearCase c = make_case(13, 53, 320, f.bits, 32, f.symmetric, true, 99, f.grid);
    const kernels::PackedMatrix p = kernels::pack(c.q);
    std::vector<std::vector<float>> results;
    for (kernels::Isa isa : {kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni}) {
      if (!kernels::isa_supported(isa)) continue;
      kernels::force_isa(isa);
      std::vector<float> y(static_cast<std::size_t>(13 * 53));
      kernels::quant_linear(p.view(), c.x.data(), 13, c.bias.data(), y.data());
      results.push_back(std::move(y));
    }
    kernels::force_isa(std::nullopt);
    ASSERT_GE(results.size(), 1u);
    for (std::size_t r = 1; r < results.size(); ++r) {
      for (std::size_t i = 0; i < results[0].size(); ++i) {
        EXPECT_NEAR(results[r][i], results[0][i], 1e-5 * (1 + std::fabs(results[0][i])))
            << "bits " << f.bits << " grid " << kernels::to_string(f.grid) << " path " << r << " output " << i;
      }
    }
  }
}

// The widths are worth their bytes: on the same Gaussian weights the error against the
// float matmul, Σ |y - x W^T|^2 over the outputs, falls with every added bit. (nl4's gain
// over int4 depends on the quantizer's scale search, which is the builder's business.)
TEST(QuantLinear, MoreBitsGiveSmallerErrors) {
  auto error = [](int bits) {
    const LinearCase c = make_case(8, 64, 1024, bits, 32, true, false, 123);
    const Reference ref = reference(c);
    const kernels::PackedMatrix p = kernels::pack(c.q);
    std::vector<float> y(static_cast<std::size_t>(8 * 64));
    kernels::quant_linear(p.view(), c.x.data(), 8, nullptr, y.data());
    double sum = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += (y[i] - ref.float_matmul[i]) * (y[i] - ref.float_matmul[i]);
    return sum;
  };
  const double int4 = error(4), int5 = error(5), int6 = error(6), int8 = error(8);
  EXPECT_LT(int5, 0.7 * int4);
  EXPECT_LT(int6, 0.7 * int5);
  EXPECT_LT(int8, int6);
}

TEST(QuantLinear, ZeroInputGivesBias) {
  const LinearCase c = make_case(2, 20, 64, 4, 32, true, true, 5);
  const kernels::PackedMatrix p = kernels::pack(c.q);
  std::vector<float> x(2 * 64, 0.0f), y(2 * 20);
  kernels::quant_linear(p.view(), x.data(), 2, c.bias.data(), y.data());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], c.bias[i % 20]) << i;
}

INSTANTIATE_TEST_SUITE_P(Isa, QuantLinearIsa,
                         ::testing::Values(kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni),
                         [](const auto& param_info) { return std::string(kernels::to_string(param_info.param)); });

}  // namespace
}  // namespace q3vl::testing
