// q3vl.Bf16Linear (src/kernels/bf16_linear.h) on every path this machine has, in the
// spirit of llama.cpp's test-backend-ops: the bf16 rounding and the packed layout on
// hand-worked values, then random shapes (M = 1 .. 600, K odd and even, N below, at and
// past a 16-row tile and a 4-tile panel), each output compared with
//   (a) the same math in double: Σ bf16(x)·bf16(w), products exact, so only the float
//       sums may differ (k · 2^-24 · Σ|terms|, the recursive-summation bound);
//   (b) the float matmul with the unrounded operands, within bf16's rounding error
//       (each operand off by at most 2^-8 of itself: ≤ (2^-7 + 2^-16) · Σ|x·w|), and the
//       rounding is real: some outputs differ from (b) by more than (a) allows.
// The ONNX Runtime op (session threads, optional bias, the error for a wrong K) is at the end.
#include <gtest/gtest.h>

#include <onnxruntime_cxx_api.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "builder/graph.h"
#include "kernels/bf16_linear.h"
#include "kernels/bf16_paths.h"
#include "kernels/dispatch.h"
#include "runtime/ort_session.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

using kernels::from_bf16;
using kernels::to_bf16;

std::uint16_t bits_of(float f) {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<std::uint16_t>(u >> 16);
}

TEST(Bf16Linear, RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(to_bf16(-2.0f), 0xC000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.0.
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f), 0x3F80);
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up.
  EXPECT_EQ(to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);
  // Just above the halfway point rounds up.
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  EXPECT_EQ(to_bf16(0.0f), 0x0000);
  EXPECT_EQ(to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  // Past bf16's largest finite value (0x7F7F) rounds to infinity.
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  const std::uint16_t nan = to_bf16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(from_bf16(nan)));
  // A NaN whose payload sits in the low half only must not round to infinity.
  std::uint32_t low_nan = 0x7F800001u;
  float f = 0;
  std::memcpy(&f, &low_nan, sizeof f);
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(f))));
  EXPECT_EQ(from_bf16(0x3FC0), 1.5f);
  EXPECT_EQ(bits_of(from_bf16(0xBF81)), 0xBF81);
}

TEST(Bf16Linear, PacksPairsOfSixteenRowTiles) {
  // W [17, 3]: row r, column c = r + c / 4 (exact in bf16). 2 tiles, 2 pairs (column 3 is padding).
  const kernels::Bf16LinearShape shape{17, 3};
  ASSERT_EQ(shape.n_tiles(), 2);
  ASSERT_EQ(shape.k_pairs(), 2);
  ASSERT_EQ(shape.weight_count(), 2 * 2 * 16 * 2);
  std::vector<float> w(17 * 3);
  for (int r = 0; r < 17; ++r) {
    for (int c = 0; c < 3; ++c) w[r * 3 + c] = static_cast<float>(r) + static_cast<float>(c) / 4;
  }
  std::vector<std::uint16_t> packed(static_cast<std::size_t>(shape.weight_count()), 0xFFFF);
  kernels::pack_bf16(shape, w.data(), packed.data());
  auto at = [&](int t, int p, int r, int j) { return from_bf16(packed[((t * 2 + p) * 16 + r) * 2 + j]); };
  EXPECT_EQ(at(0, 0, 0, 0), 0.0f);
  EXPECT_EQ(at(0, 0, 0, 1), 0.25f);
  EXPECT_EQ(at(0, 1, 0, 0), 0.5f);
  EXPECT_EQ(at(0, 1, 0, 1), 0.0f);  // column 3: padding
  EXPECT_EQ(at(0, 0, 5, 1), 5.25f);
  EXPECT_EQ(at(0, 1, 15, 0), 15.5f);
  EXPECT_EQ(at(1, 0, 0, 0), 16.0f);
  EXPECT_EQ(at(1, 1, 0, 0), 16.5f);
  EXPECT_EQ(at(1, 0, 1, 0), 0.0f);  // row 17: padding
  EXPECT_EQ(at(1, 1, 15, 1), 0.0f);
}

struct Case {
  std::int64_t m, n, k;
  std::vector<float> x, w, bias;
  std::vector<std::uint16_t> packed;
};

Case make_case(std::int64_t m, std::int64_t n, std::int64_t k, bool with_bias, unsigned seed) {
  Case c{m, n, k, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  c.x.resize(static_cast<std::size_t>(m * k));
  c.w.resize(static_cast<std::size_t>(n * k));
  for (auto& v : c.x) v = normal(rng);
  for (auto& v : c.w) v = normal(rng) * 0.05f;
  // A few large inputs, as LayerNorm outputs have.
  for (std::int64_t i = 0; i < m * k; i += 97) c.x[static_cast<std::size_t>(i)] *= 30.0f;
  if (with_bias) {
    c.bias.resize(static_cast<std::size_t>(n));
    for (auto& v : c.bias) v = normal(rng);
  }
  const kernels::Bf16LinearShape shape{n, k};
  c.packed.resize(static_cast<std::size_t>(shape.weight_count()));
  kernels::pack_bf16(shape, c.w.data(), c.packed.data());
  return c;
}

struct Expected {
  std::vector<double> y;          // Σ bf16(x)·bf16(w) (+ bias), in double
  std::vector<double> rounding;   // float summation allowance
  std::vector<double> unrounded;  // Σ x·w (+ bias), in double
  std::vector<double> bf16_bound; // |y - unrounded| allowance
};

Expected expected(const Case& c) {
  Expected e;
  const auto size = static_cast<std::size_t>(c.m * c.n);
  e.y.resize(size);
  e.rounding.resize(size);
  e.unrounded.resize(size);
  e.bf16_bound.resize(size);
  for (std::int64_t r = 0; r < c.m; ++r) {
    for (std::int64_t j = 0; j < c.n; ++j) {
      double y = 0, abs_sum = 0, plain = 0, plain_abs = 0;
      for (std::int64_t i = 0; i < c.k; ++i) {
        const float xv = c.x[static_cast<std::size_t>(r * c.k + i)], wv = c.w[static_cast<std::size_t>(j * c.k + i)];
        const double term = static_cast<double>(from_bf16(to_bf16(xv))) * from_bf16(to_bf16(wv));
        y += term;
        abs_sum += std::fabs(term);
        plain += static_cast<double>(xv) * wv;
        plain_abs += std::fabs(static_cast<double>(xv) * wv);
      }
      const double bias = c.bias.empty() ? 0.0 : c.bias[static_cast<std::size_t>(j)];
      const auto o = static_cast<std::size_t>(r * c.n + j);
      e.y[o] = y + bias;
      e.rounding[o] = static_cast<double>(c.k + 1) * 0x1p-24 * (abs_sum + std::fabs(bias)) + 1e-30;
      e.unrounded[o] = plain + bias;
      e.bf16_bound[o] = (0x1p-7 + 0x1p-16) * plain_abs + e.rounding[o];
    }
  }
  return e;
}

class Bf16LinearIsa : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    if (!kernels::isa_supported(GetParam())) GTEST_SKIP() << kernels::to_string(GetParam()) << " not on this CPU";
    kernels::force_isa(GetParam());
  }
  void TearDown() override { kernels::force_isa(std::nullopt); }
};

TEST_P(Bf16LinearIsa, MatchesTheDoubleReferenceOnRandomShapes) {
  const kernels::Bf16Path path = kernels::active_bf16_path();
  switch (GetParam()) {
    case kernels::Isa::scalar: EXPECT_EQ(path, kernels::Bf16Path::scalar); break;
    case kernels::Isa::avx2: EXPECT_EQ(path, kernels::Bf16Path::avx2); break;
    case kernels::Isa::avx512vnni: EXPECT_NE(path, kernels::Bf16Path::scalar); break;
  }
  std::printf("[bf16] isa %s runs path %s\n", kernels::to_string(GetParam()), kernels::to_string(path));
  struct Shape {
    std::int64_t n, k;
  };
  // N: below a tile, one tile, past a 4-tile panel with a ragged tile; K odd and even.
  constexpr Shape kShapes[] = {{5, 1}, {16, 3}, {83, 64}, {100, 301}, {130, 96}};
  constexpr std::int64_t kRows[] = {1, 2, 5, 6, 7, 13, 97, 600};
  unsigned seed = 70;
  std::size_t rounded_past_float = 0;
  for (const Shape& s : kShapes) {
    for (std::int64_t m : kRows) {
      const bool with_bias = (seed % 2) == 0;
      const Case c = make_case(m, s.n, s.k, with_bias, seed++);
      const Expected e = expected(c);
      std::ostringstream label;
      label << "isa=" << kernels::to_string(GetParam()) << " M=" << m << " N=" << s.n << " K=" << s.k
            << (with_bias ? " bias" : "");
      const kernels::Bf16WeightsView w{{s.n, s.k}, c.packed.data()};
      std::vector<float> y(static_cast<std::size_t>(m * s.n), std::nanf(""));
      kernels::bf16_linear(w, c.x.data(), m, c.bias.empty() ? nullptr : c.bias.data(), y.data());
      int bad = 0;
      for (std::size_t o = 0; o < y.size(); ++o) {
        const double diff = std::fabs(y[o] - e.y[o]);
        if (!(diff <= e.rounding[o]) && bad++ < 3) {
          ADD_FAILURE() << label.str() << " output " << o << ": " << y[o] << " vs " << e.y[o] << " (|diff| " << diff
                        << " > " << e.rounding[o] << ")";
        }
        const double from_float = std::fabs(y[o] - e.unrounded[o]);
        if (!(from_float <= e.bf16_bound[o]) && bad++ < 3) {
          ADD_FAILURE() << label.str() << " output " << o << ": " << y[o] << " vs unrounded " << e.unrounded[o]
                        << " (|diff| " << from_float << " > " << e.bf16_bound[o] << ")";
        }
        if (from_float > e.rounding[o]) ++rounded_past_float;
      }
    }
  }
  // The operands really are rounded to bf16 (a float32 kernel would pass (a) on no case).
  EXPECT_GT(rounded_past_float, 1000u);
}

// Each path's vectorised rounding (bf16_paths.h round_row) gives to_bf16's bits, on ties,
// signs, zeros, infinities, the largest floats and NaNs, in the SIMD body and the tail.
TEST_P(Bf16LinearIsa, RoundRowMatchesToBf16) {
  const float inf = std::numeric_limits<float>::infinity();
  std::uint32_t low_nan_bits = 0x7F800001u, negative_nan_bits = 0xFFC12345u;
  float low_nan = 0, negative_nan = 0;
  std::memcpy(&low_nan, &low_nan_bits, sizeof low_nan);
  std::memcpy(&negative_nan, &negative_nan_bits, sizeof negative_nan);
  std::vector<float> x{1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -1.0f - 0x1p-8f, 0.0f, -0.0f, inf, -inf,
                       std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(), low_nan, negative_nan,
                       std::numeric_limits<float>::quiet_NaN(), 1e-40f, -3.14159f, 65504.0f};
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 100.0f);
  while (x.size() < 53) x.push_back(normal(rng));
  std::vector<std::uint16_t> got(x.size(), 0xAAAA);
  kernels::bf16_kernels(kernels::active_bf16_path()).round_row(x.data(), static_cast<std::int64_t>(x.size()), got.data());
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got[i], to_bf16(x[i])) << "value " << i << " = " << x[i];
}

INSTANTIATE_TEST_SUITE_P(Paths, Bf16LinearIsa,
                         ::testing::Values(kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni),
                         [](const auto& param) { return std::string(kernels::to_string(param.param)); });

TEST(Bf16Linear, RejectsEmptyShapes) {
  EXPECT_THROW(kernels::validate(kernels::Bf16LinearShape{0, 4}, "test"), std::exception);
  EXPECT_THROW(kernels::validate(kernels::Bf16LinearShape{4, -1}, "test"), std::exception);
}

// ---- through ONNX Runtime -------------------------------------------------------------

// x's last dimension is declared symbolic when `open_width`, so that a wrong width
// reaches the op rather than ONNX Runtime's input check.
std::filesystem::path write_graph(const std::string& name, const Case& c, bool open_width = false) {
  const auto dir = work_dir() / "kernels" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  builder::Graph g("bf16", dir / "op.onnx.data");
  const builder::Value x =
      open_width ? g.input("x", builder::DType::f32, {"batch", "rows", "width"})
                 : g.input("x", builder::DType::f32, {"batch", "rows", c.k});
  const kernels::Bf16LinearShape shape{c.n, c.k};
  std::vector<builder::Value> inputs{
      x, g.initializer("weight", builder::DType::bf16, {shape.n_tiles(), shape.k_pairs(), kernels::kTileRows, 2},
                       std::as_bytes(std::span(c.packed)))};
  if (!c.bias.empty()) inputs.push_back(g.initializer_f32("bias", {c.n}, c.bias));
  g.output(g.op("q3vl.Bf16Linear", inputs, {{"K", c.k}, {"N", c.n}}), "y", builder::DType::f32,
           {"batch", "rows", c.n});
  g.save(dir / "op.onnx");
  return dir / "op.onnx";
}

std::vector<Ort::Value> run(runtime::OrtSession& session, std::vector<float>& x, std::int64_t m, std::int64_t k) {
  std::vector<std::int64_t> shape{1, m, k};
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<Ort::Value> inputs;
  inputs.push_back(Ort::Value::CreateTensor<float>(memory, x.data(), x.size(), shape.data(), shape.size()));
  return session.run({"x"}, inputs, {"y"});
}

TEST(Bf16LinearOrt, MatchesTheDoubleReferenceOnSessionThreads) {
  runtime::SessionConfig config;
  config.intra_op_threads = 2;
  unsigned seed = 300;
  for (bool with_bias : {false, true}) {
    for (std::int64_t m : {1, 600}) {
      const Case c = make_case(m, 75, 129, with_bias, seed++);
      const Expected e = expected(c);
      runtime::OrtSession session("bf16", write_graph("bf16_op", c), config);
      std::vector<float> x = c.x;
      const auto out = run(session, x, m, c.k);
      ASSERT_EQ(out[0].GetTensorTypeAndShapeInfo().GetShape(), (std::vector<std::int64_t>{1, m, c.n}));
      const float* y = out[0].GetTensorData<float>();
      int bad = 0;
      for (std::int64_t o = 0; o < m * c.n; ++o) {
        const double diff = std::fabs(y[o] - e.y[static_cast<std::size_t>(o)]);
        if (!(diff <= e.rounding[static_cast<std::size_t>(o)]) && bad++ < 3) {
          ADD_FAILURE() << "M=" << m << (with_bias ? " bias" : "") << " output " << o << ": " << y[o] << " vs "
                        << e.y[static_cast<std::size_t>(o)];
        }
      }
    }
  }
}

TEST(Bf16LinearOrt, WrongInputWidthNamesTheNodeAndK) {
  const Case c = make_case(2, 20, 33, false, 5);
  runtime::OrtSession session("bf16", write_graph("bf16_bad", c, true));
  std::vector<float> x(2 * 32, 1.0f);
  try {
    run(session, x, 2, 32);
    FAIL() << "a 32-wide x ran through a K = 33 q3vl.Bf16Linear";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("q3vl.Bf16Linear"), std::string::npos) << what;
    EXPECT_NE(what.find("K = 33"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace q3vl::testing
