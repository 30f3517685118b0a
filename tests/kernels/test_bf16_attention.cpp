// q3vl.Bf16Attention (src/kernels/bf16_attention.h) on every bf16 path this machine has,
// against a double-precision reference of its math (bf16 operands and weights, exact
// products), on random shapes: L from 1 to past a 64-key panel with a ragged tile, head_dim
// below a tile, at 64 and past a 4-tile panel (80), several heads and batch entries.
// Bounds per output o_ic (Z, e_j from the reference):
//   (a) vs the same math in double: float sums and exp (1e-5 of Σ_j e_j |v_jc| / Z), plus
//       up to two softmax weights landing on the other side of a bf16 rounding boundary
//       (each moves by one bf16 spacing, 2^-7 of itself: 2 · 2^-7 · max_j e_j |v_jc| / Z);
//   (b) vs float attention on the unrounded inputs, within bf16's error: q, k, v and the
//       weights each off by at most 2^-8 of themselves, through the softmax (a score error
//       δ scales a weight by e^δ), bounded generously as 2^-5 · Σ_j e_j |v_jc| / Z + the
//       score error's share; and the rounding is real (some outputs differ by more than (a)).
// Through ONNX Runtime: against com.microsoft.MultiHeadAttention in the same graph.
#include <gtest/gtest.h>

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "builder/graph.h"
#include "kernels/bf16_attention.h"
#include "kernels/bf16_linear.h"
#include "kernels/dispatch.h"
#include "runtime/ort_session.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

using kernels::from_bf16;
using kernels::to_bf16;

double bf(float v) { return from_bf16(to_bf16(v)); }

struct Case {
  std::int64_t batch, length, heads, head_dim;
  float scale;
  std::vector<float> q, k, v;
};

Case make_case(std::int64_t batch, std::int64_t length, std::int64_t heads, std::int64_t head_dim, unsigned seed) {
  Case c{batch, length, heads, head_dim, static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim))), {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto size = static_cast<std::size_t>(batch * length * heads * head_dim);
  for (auto* t : {&c.q, &c.k, &c.v}) {
    t->resize(size);
    for (auto& x : *t) x = normal(rng);
  }
  // Sharper attention in some rows: a few large queries.
  for (std::size_t i = 0; i < size; i += 53) c.q[i] *= 6.0f;
  return c;
}

struct Expected {
  std::vector<double> o, rounding, unrounded, bf16_bound;
};

Expected expected(const Case& c) {
  const std::int64_t width = c.heads * c.head_dim, L = c.length, d = c.head_dim;
  const auto size = static_cast<std::size_t>(c.batch * L * width);
  Expected e{std::vector<double>(size), std::vector<double>(size), std::vector<double>(size), std::vector<double>(size)};
  auto at = [&](const std::vector<float>& t, std::int64_t b, std::int64_t l, std::int64_t h, std::int64_t col) {
    return t[static_cast<std::size_t>((b * L + l) * width + h * d + col)];
  };
  std::vector<double> s(static_cast<std::size_t>(L)), w(static_cast<std::size_t>(L)), s_plain(static_cast<std::size_t>(L)),
      w_plain(static_cast<std::size_t>(L)), score_error(static_cast<std::size_t>(L));
  for (std::int64_t b = 0; b < c.batch; ++b) {
    for (std::int64_t h = 0; h < c.heads; ++h) {
      for (std::int64_t i = 0; i < L; ++i) {
        double top = -INFINITY, top_plain = -INFINITY;
        for (std::int64_t j = 0; j < L; ++j) {
          double sum = 0, plain = 0, magnitude = 0;
          for (std::int64_t col = 0; col < d; ++col) {
            sum += bf(at(c.q, b, i, h, col)) * bf(at(c.k, b, j, h, col));
            plain += static_cast<double>(at(c.q, b, i, h, col)) * at(c.k, b, j, h, col);
            magnitude += std::fabs(static_cast<double>(at(c.q, b, i, h, col)) * at(c.k, b, j, h, col));
          }
          s[static_cast<std::size_t>(j)] = c.scale * sum;
          s_plain[static_cast<std::size_t>(j)] = c.scale * plain;
          // The bf16 operands move a score by up to (2^-7 + 2^-16) of Σ|q k|, times scale.
          score_error[static_cast<std::size_t>(j)] = c.scale * (0x1p-7 + 0x1p-16) * magnitude;
          top = std::max(top, s[static_cast<std::size_t>(j)]);
          top_plain = std::max(top_plain, s_plain[static_cast<std::size_t>(j)]);
        }
        double z = 0, z_plain = 0, worst_error = 0;
        for (std::int64_t j = 0; j < L; ++j) {
          const auto u = static_cast<std::size_t>(j);
          w[u] = std::exp(s[u] - top);
          w_plain[u] = std::exp(s_plain[u] - top_plain);
          z += w[u];
          z_plain += w_plain[u];
          worst_error = std::max(worst_error, score_error[u]);
        }
        for (std::int64_t col = 0; col < d; ++col) {
          double o = 0, o_plain = 0, spread = 0, largest = 0;
          for (std::int64_t j = 0; j < L; ++j) {
            const auto u = static_cast<std::size_t>(j);
            const double value = at(c.v, b, j, h, col);
            o += from_bf16(to_bf16(static_cast<float>(w[u]))) * bf(static_cast<float>(value));
            o_plain += w_plain[u] * value;
            spread += w[u] * std::fabs(value);
            largest = std::max(largest, w[u] * std::fabs(value));
          }
          const auto out = static_cast<std::size_t>((b * L + i) * width + h * d + col);
          e.o[out] = o / z;
          e.rounding[out] = (1e-5 * spread + 2 * 0x1p-7 * largest) / z + 1e-30;
          e.unrounded[out] = o_plain / z_plain;
          // Weights move by a factor within e^(±2·worst score error) (numerator and Z), the
          // weights' and values' own rounding adds 2^-7 each; 2^-5 covers the products.
          e.bf16_bound[out] = (std::expm1(4 * worst_error) + 0x1p-5) * spread / z + e.rounding[out];
        }
      }
    }
  }
  return e;
}

struct Outcome {
  int bad = 0;
  std::size_t rounded_past_float = 0;
};

void compare(const std::vector<float>& got, const Expected& e, const std::string& label, Outcome& outcome) {
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(got[i] - e.o[i]);
    if (!(diff <= e.rounding[i]) && outcome.bad++ < 3) {
      ADD_FAILURE() << label << " output " << i << ": " << got[i] << " vs " << e.o[i] << " (|diff| " << diff << " > "
                    << e.rounding[i] << ")";
    }
    const double from_float = std::fabs(got[i] - e.unrounded[i]);
    if (!(from_float <= e.bf16_bound[i]) && outcome.bad++ < 3) {
      ADD_FAILURE() << label << " output " << i << ": " << got[i] << " vs unrounded " << e.unrounded[i] << " (|diff| "
                    << from_float << " > " << e.bf16_bound[i] << ")";
    }
    if (from_float > e.rounding[i]) ++outcome.rounded_past_float;
  }
}

class Bf16AttentionIsa : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    if (!kernels::isa_supported(GetParam())) GTEST_SKIP() << kernels::to_string(GetParam()) << " not on this CPU";
    kernels::force_isa(GetParam());
  }
  void TearDown() override { kernels::force_isa(std::nullopt); }
};

TEST_P(Bf16AttentionIsa, MatchesTheDoubleReferenceOnRandomShapes) {
  struct Shape {
    std::int64_t batch, length, heads, head_dim;
  };
  constexpr Shape kShapes[] = {{1, 1, 1, 2}, {2, 5, 3, 20}, {1, 33, 2, 64}, {2, 130, 2, 64}, {1, 70, 1, 80}};
  unsigned seed = 40;
  Outcome outcome;
  for (const Shape& s : kShapes) {
    const Case c = make_case(s.batch, s.length, s.heads, s.head_dim, seed++);
    const Expected e = expected(c);
    std::ostringstream label;
    label << "isa=" << kernels::to_string(GetParam()) << " path=" << kernels::to_string(kernels::active_bf16_path())
          << " B=" << s.batch << " L=" << s.length << " heads=" << s.heads << " head_dim=" << s.head_dim;
    std::vector<float> out(c.q.size(), std::nanf(""));
    kernels::Bf16AttentionArgs args;
    args.shape = {s.heads, s.head_dim, c.scale};
    args.batch = s.batch;
    args.length = s.length;
    args.q = c.q.data();
    args.k = c.k.data();
    args.v = c.v.data();
    args.out = out.data();
    kernels::bf16_attention(args);
    compare(out, e, label.str(), outcome);
  }
  EXPECT_GT(outcome.rounded_past_float, 1000u);
}

INSTANTIATE_TEST_SUITE_P(Paths, Bf16AttentionIsa,
                         ::testing::Values(kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni),
                         [](const auto& param) { return std::string(kernels::to_string(param.param)); });

TEST(Bf16Attention, RejectsBadShapes) {
  EXPECT_THROW(kernels::validate(kernels::Bf16AttentionShape{0, 64, 0.125f}, "test"), std::exception);
  EXPECT_THROW(kernels::validate(kernels::Bf16AttentionShape{2, 63, 0.125f}, "test"), std::exception);
  EXPECT_THROW(kernels::validate(kernels::Bf16AttentionShape{2, 64, 0.0f}, "test"), std::exception);
  EXPECT_THROW(kernels::validate(kernels::Bf16AttentionShape{2, 64, NAN}, "test"), std::exception);
  EXPECT_NO_THROW(kernels::validate(kernels::Bf16AttentionShape{2, 64, 0.125f}, "test"));
}

// One graph: o_q3vl = q3vl.Bf16Attention(q, k, v), o_ort = com.microsoft.MultiHeadAttention(q, k, v),
// run on session threads; both against the reference (q3vl within (a), ORT's fp32 within (b)'s
// bound of the unrounded math, and each other within (b)).
TEST(Bf16AttentionOrt, AgreesWithMultiHeadAttentionOnSessionThreads) {
  const Case c = make_case(2, 97, 3, 32, 77);
  const Expected e = expected(c);
  const std::int64_t width = c.heads * c.head_dim;
  const auto dir = work_dir() / "kernels" / "bf16_attention";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  builder::Graph g("attention", dir / "op.onnx.data");
  const builder::Value q = g.input("q", builder::DType::f32, {"batch", "length", width});
  const builder::Value k = g.input("k", builder::DType::f32, {"batch", "length", width});
  const builder::Value v = g.input("v", builder::DType::f32, {"batch", "length", width});
  g.output(g.op("q3vl.Bf16Attention", {q, k, v},
                {{"num_heads", c.heads}, {"head_dim", c.head_dim}, {"scale", c.scale}}),
           "o_q3vl", builder::DType::f32, {"batch", "length", width});
  g.output(g.op("com.microsoft.MultiHeadAttention", {q, k, v}, {{"num_heads", c.heads}}), "o_ort",
           builder::DType::f32, {"batch", "length", width});
  g.save(dir / "op.onnx");
  runtime::SessionConfig config;
  config.intra_op_threads = 2;
  runtime::OrtSession session("attention", dir / "op.onnx", config);
  std::vector<std::int64_t> shape{c.batch, c.length, width};
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<float> qv = c.q, kv = c.k, vv = c.v;
  std::vector<Ort::Value> inputs;
  for (auto* t : {&qv, &kv, &vv}) {
    inputs.push_back(Ort::Value::CreateTensor<float>(memory, t->data(), t->size(), shape.data(), shape.size()));
  }
  const auto out = session.run({"q", "k", "v"}, inputs, {"o_q3vl", "o_ort"});
  ASSERT_EQ(out[0].GetTensorTypeAndShapeInfo().GetShape(), shape);
  const float* mine = out[0].GetTensorData<float>();
  const float* ort = out[1].GetTensorData<float>();
  Outcome outcome;
  compare(std::vector<float>(mine, mine + c.q.size()), e, "session", outcome);
  for (std::size_t i = 0; i < c.q.size(); ++i) {
    // MultiHeadAttention computes in float32: close to the unrounded math.
    ASSERT_NEAR(ort[i], e.unrounded[i], 1e-4 * (1 + std::fabs(e.unrounded[i]))) << "output " << i;
    ASSERT_LE(std::fabs(mine[i] - ort[i]), e.bf16_bound[i] + 1e-4 * (1 + std::fabs(e.unrounded[i]))) << "output " << i;
  }
  EXPECT_GT(outcome.rounded_past_float, 100u);
}

}  // namespace
}  // namespace q3vl::testing
