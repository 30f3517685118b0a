// q3vl.QuantSwiGLU (kernels/quant_linear.h) on every ISA path this machine has:
//     y[m, i] = silu(g) · u,  g = x_m · Wg_i,  u = x_m · Wu_i
// against a double-precision reference built from the plain blockwise layout
// (quant_reference.h computes g and u exactly as the quantized math defines them), and
// against the float weights. Random shapes: M = 1 .. 600, intermediate sizes below one
// pair group, not a multiple of 8 or 16, K not a multiple of the block, 4, 6 and 8 bits and nl4,
// symmetric and asymmetric, blocks 32 and 128.
// Error propagation for the bounds: |silu'| <= 1.1 everywhere, so
//     |silu(g')u' − silu(g)u| <= 1.1·|g' − g|·(|u| + |u' − u|) + |silu(g)|·|u' − u|
// plus the kernel's own exp/divide rounding (1e-6 relative).
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

double silu(double g) { return g / (1.0 + std::exp(-g)); }

double propagated(double g, double u, double g_err, double u_err) {
  return 1.1 * g_err * (std::fabs(u) + u_err) + std::fabs(silu(g)) * u_err + 1e-6 * std::fabs(silu(g) * u) + 1e-7;
}

struct Shape {
  std::int64_t intermediate, k;
};
constexpr Shape kShapes[] = {{37, 256}, {5, 77}, {16, 200}, {100, 416}};
constexpr std::int64_t kRows[] = {1, 2, 3, 7, 16, 64, 600};

class QuantSwiGLUIsa : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    if (!kernels::isa_supported(GetParam())) GTEST_SKIP() << kernels::to_string(GetParam()) << " not on this CPU";
    kernels::force_isa(GetParam());
  }
  void TearDown() override { kernels::force_isa(std::nullopt); }
};

TEST_P(QuantSwiGLUIsa, MatchesDoubleReferenceAndFloatWeights) {
  unsigned seed = 700;
  int cases = 0;
  struct Format {
    int bits;
    kernels::WeightGrid grid;
    bool symmetric;
  };
  const Format formats[] = {{4, kernels::WeightGrid::uniform, true}, {4, kernels::WeightGrid::uniform, false},
                            {6, kernels::WeightGrid::uniform, false},
                            {8, kernels::WeightGrid::uniform, true}, {8, kernels::WeightGrid::uniform, false},
                            {4, kernels::WeightGrid::nl, true}};
  for (const Format& f : formats) {
    const int bits = f.bits;
    const bool symmetric = f.symmetric;
    for (std::int64_t block : {32, 128}) {
      for (std::int64_t m : kRows) {
        for (const Shape& s : kShapes) {
          if (m == 600 && s.intermediate != 37) continue;  // big M once per combination
          std::ostringstream label;
          label << "isa=" << kernels::to_string(GetParam()) << " bits=" << bits << " grid=" << kernels::to_string(f.grid)
                << (symmetric ? " symmetric" : " asymmetric") << " block=" << block << " M=" << m
                << " I=" << s.intermediate << " K=" << s.k;
          // The stacked matrix directly: row swiglu_gate_row(i) is gate i, swiglu_up_row(i) up i
          // (the padding rows past I hold random weights here: the kernel must never store them).
          const std::int64_t rows = kernels::swiglu_stacked_rows(s.intermediate);
          const LinearCase c = make_case(m, rows, s.k, bits, block, symmetric, false, seed++, f.grid);
          const Reference ref = reference(c);
          const kernels::PackedMatrix p = kernels::pack(c.q);
          // One guard element past the end catches a store beyond [m, I].
          std::vector<float> y(static_cast<std::size_t>(m * s.intermediate + 1), -7.0f);
          kernels::quant_swiglu(p.view(), s.intermediate, c.x.data(), m, y.data());
          int bad = 0;
          for (std::int64_t r = 0; r < m; ++r) {
            for (std::int64_t i = 0; i < s.intermediate; ++i) {
              const auto gi = static_cast<std::size_t>(r * rows + kernels::swiglu_gate_row(i));
              const auto ui = static_cast<std::size_t>(r * rows + kernels::swiglu_up_row(i));
              const double got = y[static_cast<std::size_t>(r * s.intermediate + i)];
              const double want = silu(ref.y[gi]) * ref.y[ui];
              const double bound = propagated(ref.y[gi], ref.y[ui], ref.rounding[gi], ref.rounding[ui]);
              if (std::fabs(got - want) > bound && bad++ < 3) {
                ADD_FAILURE() << label.str() << " row " << r << " i " << i << ": " << got
                              << " vs double reference " << want << " (bound " << bound << ")";
              }
              const double from_float = silu(ref.float_matmul[gi]) * ref.float_matmul[ui];
              const double float_bound =
                  propagated(ref.float_matmul[gi], ref.float_matmul[ui], ref.float_bound[gi], ref.float_bound[ui]);
              if (std::fabs(got - from_float) > float_bound && bad++ < 3) {
                ADD_FAILURE() << label.str() << " row " << r << " i " << i << ": " << got
                              << " vs float weights " << from_float << " (bound " << float_bound << ")";
              }
            }
          }
          EXPECT_EQ(y.back(), -7.0f) << label.str() << ": wrote past the output";
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 6 * 2 * (6 * 4 + 1));
}

// The same pairs through quant_linear (the unfused op on the same packed weights): the
// fused epilogue must see exactly the accumulators QuantLinear stores.
TEST(QuantSwiGLU, AgreesWithQuantLinearOnTheSameWeights) {
  const std::int64_t m = 9, intermediate = 45, k = 96, rows = kernels::swiglu_stacked_rows(intermediate);
  const LinearCase c = make_case(m, rows, k, 4, 32, true, false, 31);
  const kernels::PackedMatrix p = kernels::pack(c.q);
  for (kernels::Isa isa : {kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni}) {
    if (!kernels::isa_supported(isa)) continue;
    kernels::force_isa(isa);
    std::vector<float> linear(static_cast<std::size_t>(m * rows)), fused(static_cast<std::size_t>(m * intermediate));
    kernels::quant_linear(p.view(), c.x.data(), m, nullptr, linear.data());
    kernels::quant_swiglu(p.view(), intermediate, c.x.data(), m, fused.data());
    for (std::int64_t r = 0; r < m; ++r) {
      for (std::int64_t i = 0; i < intermediate; ++i) {
        const double g = linear[static_cast<std::size_t>(r * rows + kernels::swiglu_gate_row(i))];
        const double u = linear[static_cast<std::size_t>(r * rows + kernels::swiglu_up_row(i))];
        const double want = silu(g) * u;
        EXPECT_NEAR(fused[static_cast<std::size_t>(r * intermediate + i)], want, 2e-6 * (1 + std::fabs(want)))
            << kernels::to_string(isa) << " row " << r << " i " << i;
      }
    }
  }
  kernels::force_isa(std::nullopt);
}

// The pair order, worked by hand: gate i and up i share tile i / 8, at rows i % 8 and 8 + i % 8.
TEST(QuantSwiGLU, PairOrder) {
  EXPECT_EQ(kernels::swiglu_gate_row(0), 0);
  EXPECT_EQ(kernels::swiglu_up_row(0), 8);
  EXPECT_EQ(kernels::swiglu_gate_row(7), 7);
  EXPECT_EQ(kernels::swiglu_up_row(7), 15);
  EXPECT_EQ(kernels::swiglu_gate_row(8), 16);
  EXPECT_EQ(kernels::swiglu_up_row(13), 29);
  EXPECT_EQ(kernels::swiglu_stacked_rows(1), 16);
  EXPECT_EQ(kernels::swiglu_stacked_rows(8), 16);
  EXPECT_EQ(kernels::swiglu_stacked_rows(9728), 19456);
  EXPECT_EQ(kernels::swiglu_stacked_rows(37), 80);
}

INSTANTIATE_TEST_SUITE_P(Isa, QuantSwiGLUIsa,
                         ::testing::Values(kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni),
                         [](const auto& param_info) { return std::string(kernels::to_string(param_info.param)); });

}  // namespace
}  // namespace q3vl::testing
