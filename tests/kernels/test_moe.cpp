// q3vl.MoE (src/kernels/moe.h) on every ISA path this machine has, against a reference
// written here in double precision from MatMulNBits' plain blockwise layout (never from
// the tile layout): routing (top-k, ties to the lower expert, renormalised softmax) and
// the experts with their dequantized weights on float activations. The op quantizes x and
// the SwiGLU output to int8 (32-value blocks), so each output is checked against an error
// bound propagated from that quantization through fc1, SwiGLU and fc2 (plus float
// rounding), computed per output. Cases: random E, k, T = 1..300 (two passes at 300),
// H and I not multiples of the 16-row tile nor of the block, 4, 5, 6, 8 bits and nl4,
// blocks 32, 64 and 128, symmetric and asymmetric, and routings where experts get no token, one expert
// gets every token, every expert gets every token (k = E), and logits tie.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>
#include <string>

#include "kernels/dispatch.h"
#include "kernels/moe.h"
#include "kernels/pack.h"
#include "q3vl/error.h"
#include "quant_reference.h"

namespace q3vl::testing {
namespace {

enum class Routing { random, one_expert, ties };

struct Case {
  std::int64_t E, k, T, H, I;
  int bits;
  std::int64_t block;
  bool symmetric;
  Routing routing;
  kernels::WeightGrid grid = kernels::WeightGrid::uniform;
};

std::string describe(const Case& c) {
  std::ostringstream out;
  out << "isa=" << kernels::to_string(kernels::active_isa()) << " E=" << c.E << " k=" << c.k << " T=" << c.T
      << " H=" << c.H << " I=" << c.I << " bits=" << c.bits << " grid=" << kernels::to_string(c.grid)
      << " block=" << c.block
      << (c.symmetric ? " symmetric" : " asymmetric") << " routing="
      << (c.routing == Routing::random ? "random" : c.routing == Routing::one_expert ? "one_expert" : "ties");
  return out.str();
}

// One expert matrix: blockwise codes (the reference reads these) and the packed tiles.
struct Matrix {
  kernels::BlockwiseMatrix q;
  kernels::PackedMatrix packed;
  std::vector<double> dequantized;  // [n, k]
};

Matrix make_matrix(std::int64_t n, std::int64_t k, const Case& c, std::mt19937& rng, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> w(static_cast<std::size_t>(n * k));
  for (auto& v : w) v = normal(rng);
  Matrix m;
  m.q = quantize_weights(w, n, k, c.bits, c.block, c.symmetric, c.grid);
  m.packed = kernels::pack(m.q);
  const auto& s = m.q.shape;
  m.dequantized.resize(static_cast<std::size_t>(n * k));
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t i = 0; i < k; ++i) {
      m.dequantized[static_cast<std::size_t>(r * k + i)] =
          static_cast<double>(m.q.scales[r * s.k_blocks() + i / s.block_size]) * weight_level(m.q, r, i);
    }
  }
  return m;
}

// The kernel's activation quantization error on a vector v (block-wise int8, d = amax/127):
// |quantized - v_i| <= amax(block)/254 + a few ulps; `slack` widens amax for a v that is
// itself only known within slack.
std::vector<double> quantization_error(const std::vector<double>& v, const std::vector<double>& slack) {
  std::vector<double> err(v.size());
  for (std::size_t j0 = 0; j0 < v.size(); j0 += 32) {
    double amax = 0;
    for (std::size_t j = j0; j < std::min(v.size(), j0 + 32); ++j) amax = std::max(amax, std::fabs(v[j]) + slack[j]);
    for (std::size_t j = j0; j < std::min(v.size(), j0 + 32); ++j) err[j] = amax / 254 + 1e-6 * (std::fabs(v[j]) + slack[j]);
  }
  return err;
}

// y = W v and a bound on |y_kernel - y| given |v_kernel - v| <= v_err (plus float rounding).
void matvec(const std::vector<double>& w, std::int64_t n, const std::vector<double>& v,
            const std::vector<double>& v_err, std::vector<double>& y, std::vector<double>& y_err) {
  const auto k = static_cast<std::int64_t>(v.size());
  y.assign(static_cast<std::size_t>(n), 0.0);
  y_err.assign(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t r = 0; r < n; ++r) {
    double sum = 0, err = 0, magnitude = 0;
    for (std::int64_t i = 0; i < k; ++i) {
      const double wi = w[static_cast<std::size_t>(r * k + i)];
      sum += wi * v[i];
      err += std::fabs(wi) * v_err[i];
      magnitude += std::fabs(wi) * (std::fabs(v[i]) + v_err[i]);
    }
    y[r] = sum;
    y_err[r] = err + 1e-5 * magnitude + 1e-6;
  }
}

struct MoECase {
  Case c;
  std::vector<float> x, logits;
  std::vector<Matrix> fc1, fc2;
  std::vector<std::uint8_t> fc1_codes, fc2_codes, fc1_zero, fc2_zero;
  std::vector<std::uint16_t> fc1_scales, fc2_scales;

  kernels::MoEWeights weights() const {
    kernels::MoEWeights w;
    w.shape = {c.E, c.k, c.H, c.I, c.bits, c.block, c.grid};
    w.fc1 = fc1_codes.data();
    w.fc1_scales = fc1_scales.data();
    w.fc1_zero_points = c.symmetric ? nullptr : fc1_zero.data();
    w.fc2 = fc2_codes.data();
    w.fc2_scales = fc2_scales.data();
    w.fc2_zero_points = c.symmetric ? nullptr : fc2_zero.data();
    return w;
  }
};

template <typename T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

MoECase make_moe_case(const Case& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  MoECase m;
  m.c = c;
  m.x.resize(static_cast<std::size_t>(c.T * c.H));
  for (auto& v : m.x) v = normal(rng);
  m.logits.resize(static_cast<std::size_t>(c.T * c.E));
  std::uniform_int_distribution<int> coin(0, 1);
  for (std::int64_t t = 0; t < c.T; ++t) {
    for (std::int64_t e = 0; e < c.E; ++e) {
      float& l = m.logits[static_cast<std::size_t>(t * c.E + e)];
      switch (c.routing) {
        case Routing::random: l = 2.0f * normal(rng); break;
        case Routing::one_expert: l = (e == c.E / 2 ? 20.0f : 0.0f) + normal(rng); break;
        case Routing::ties: l = static_cast<float>(coin(rng)); break;  // many exactly equal logits
      }
    }
  }
  for (std::int64_t e = 0; e < c.E; ++e) {
    m.fc1.push_back(make_matrix(2 * c.I, c.H, c, rng, 0.15f));
    m.fc2.push_back(make_matrix(c.H, c.I, c, rng, 0.15f));
    append(m.fc1_codes, m.fc1.back().packed.weight);
    append(m.fc1_scales, m.fc1.back().packed.scales);
    append(m.fc1_zero, m.fc1.back().packed.zero_points);
    append(m.fc2_codes, m.fc2.back().packed.weight);
    append(m.fc2_scales, m.fc2.back().packed.scales);
    append(m.fc2_zero, m.fc2.back().packed.zero_points);
  }
  return m;
}

// The reference output and its allowance, per [T, H].
struct MoEReference {
  std::vector<double> y, bound;
  std::vector<std::int64_t> experts_used;  // how many tokens each expert got
};

MoEReference reference(const MoECase& m) {
  const Case& c = m.c;
  MoEReference ref;
  ref.y.assign(static_cast<std::size_t>(c.T * c.H), 0.0);
  ref.bound.assign(ref.y.size(), 0.0);
  ref.experts_used.assign(static_cast<std::size_t>(c.E), 0);
  for (std::int64_t t = 0; t < c.T; ++t) {
    const float* l = m.logits.data() + t * c.E;
    std::vector<std::int64_t> order(static_cast<std::size_t>(c.E));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return l[a] > l[b]; });
    // softmax over all E in double, then renormalised over the top k
    double max = l[order[0]], total = 0, top = 0;
    for (std::int64_t e = 0; e < c.E; ++e) total += std::exp(l[e] - max);
    for (std::int64_t s = 0; s < c.k; ++s) top += std::exp(l[order[s]] - max) / total;
    std::vector<double> x(c.H), x_err;
    for (std::int64_t i = 0; i < c.H; ++i) x[i] = m.x[static_cast<std::size_t>(t * c.H + i)];
    x_err = quantization_error(x, std::vector<double>(x.size(), 0.0));
    for (std::int64_t s = 0; s < c.k; ++s) {
      const std::int64_t e = order[s];
      ++ref.experts_used[e];
      const double weight = std::exp(l[e] - max) / total / top;
      std::vector<double> h, h_err;
      matvec(m.fc1[e].dequantized, 2 * c.I, x, x_err, h, h_err);
      std::vector<double> a(c.I), a_err(c.I);
      for (std::int64_t j = 0; j < c.I; ++j) {
        const double g = h[2 * j], u = h[2 * j + 1], dg = h_err[2 * j], du = h_err[2 * j + 1];
        const double silu = g / (1 + std::exp(-g));
        a[j] = silu * u;
        // |silu'| <= 1.1 everywhere
        a_err[j] = 1.1 * dg * (std::fabs(u) + du) + (std::fabs(silu) + 1.1 * dg) * du + 1e-6 * std::fabs(a[j]);
      }
      const std::vector<double> q_err = quantization_error(a, a_err);
      for (std::int64_t j = 0; j < c.I; ++j) a_err[j] += q_err[j];
      std::vector<double> o, o_err;
      matvec(m.fc2[e].dequantized, c.H, a, a_err, o, o_err);
      for (std::int64_t i = 0; i < c.H; ++i) {
        const auto idx = static_cast<std::size_t>(t * c.H + i);
        ref.y[idx] += weight * o[i];
        ref.bound[idx] += weight * o_err[i] + 1e-6 * std::fabs(o[i]) + 1e-6;
      }
    }
  }
  return ref;
}

// A ParallelFor that runs the items last to first: the result must not depend on the order.
void reverse_for(void* /*context*/, std::size_t total, void (*fn)(void*, std::size_t), void* data) {
  for (std::size_t i = total; i-- > 0;) fn(data, i);
}

class MoEIsa : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    if (!kernels::isa_supported(GetParam())) GTEST_SKIP() << kernels::to_string(GetParam()) << " not on this CPU";
    kernels::force_isa(GetParam());
  }
  void TearDown() override { kernels::force_isa(std::nullopt); }
};

TEST_P(MoEIsa, MatchesDoubleReferenceForEveryRouting) {
  // H, I: neither multiples of 16 nor of 32 (100, 52), or below one tile (40, 12).
  const Case cases[] = {
      {8, 2, 1, 100, 52, 4, 32, true, Routing::random},     // decode: 2 of 8 experts touched
      {8, 2, 3, 100, 52, 8, 32, true, Routing::random},     // most experts get no token
      {16, 4, 300, 100, 52, 4, 32, true, Routing::random},  // two passes (256 + 44 tokens)
      {16, 4, 300, 100, 52, 8, 128, true, Routing::random},
      {6, 1, 40, 40, 12, 4, 32, true, Routing::one_expert},  // every token to expert 3, the rest idle
      {5, 5, 17, 40, 12, 4, 32, true, Routing::random},      // k = E: every expert gets every token
      {8, 3, 64, 100, 52, 4, 32, true, Routing::ties},       // ties broken towards the lower expert
      {8, 2, 9, 100, 52, 4, 128, false, Routing::random},    // asymmetric (zero points)
      {8, 2, 9, 100, 52, 8, 32, false, Routing::ties},
      {8, 2, 1, 100, 52, 6, 32, true, Routing::random},     // 6-bit decode
      {8, 2, 70, 100, 52, 6, 64, false, Routing::random},   // 6-bit, zero points
      {8, 2, 70, 100, 52, 5, 32, true, Routing::random},
      {8, 2, 1, 100, 52, 4, 32, true, Routing::random, kernels::WeightGrid::nl},  // nl4 decode
      {8, 3, 70, 100, 52, 4, 128, true, Routing::random, kernels::WeightGrid::nl},
  };
  unsigned seed = 11;
  for (const Case& c : cases) {
    const MoECase m = make_moe_case(c, seed++);
    const MoEReference ref = reference(m);
    if (c.routing == Routing::one_expert) {
      ASSERT_EQ(ref.experts_used[c.E / 2], c.T) << describe(c);
    }
    if (c.k == c.E) {
      for (std::int64_t used : ref.experts_used) ASSERT_EQ(used, c.T) << describe(c);
    }
    const kernels::MoEWeights w = m.weights();
    std::vector<float> y(ref.y.size(), -7.0f), y_reversed(ref.y.size(), -7.0f);
    kernels::moe(w, m.x.data(), m.logits.data(), c.T, y.data());
    kernels::moe(w, m.x.data(), m.logits.data(), c.T, y_reversed.data(), {reverse_for, nullptr});
    int bad = 0;
    double worst = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const double err = std::fabs(y[i] - ref.y[i]);
      worst = std::max(worst, err / ref.bound[i]);
      if (err > ref.bound[i] && bad++ < 3) {
        ADD_FAILURE() << describe(c) << " output " << i << ": " << y[i] << " vs double reference " << ref.y[i]
                      << " (|diff| " << err << " > bound " << ref.bound[i] << ")";
      }
      if (y[i] != y_reversed[i] && bad++ < 3) {
        ADD_FAILURE() << describe(c) << " output " << i << " depends on the work order: " << y[i] << " vs "
                      << y_reversed[i];
      }
    }
    // The bound is not vacuous: the error uses a visible share of it somewhere.
    EXPECT_GT(worst, 1e-3) << describe(c);
  }
}

INSTANTIATE_TEST_SUITE_P(AllPaths, MoEIsa,
                         ::testing::Values(kernels::Isa::scalar, kernels::Isa::avx2, kernels::Isa::avx512vnni),
                         [](const auto& param_info) { return std::string(kernels::to_string(param_info.param)); });

TEST(MoEShape, RejectsKOutsideOneToE) {
  try {
    kernels::validate(kernels::MoEShape{4, 5, 64, 32, 4, 32}, "moe node");
    FAIL() << "k = 5 > num_experts = 4 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(e.what()).find("1 <= k <= num_experts"), std::string::npos) << e.what();
  }
  EXPECT_THROW(kernels::validate(kernels::MoEShape{4, 2, 64, 32, 4, 16}, "moe node"), Error);  // block 16
}

}  // namespace
}  // namespace q3vl::testing
