#include "quant_reference.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "builder/quantize.h"
#include "io/dtype.h"

namespace q3vl::testing {
namespace {

int code(const kernels::BlockwiseMatrix& q, std::int64_t n, std::int64_t k) {
  const std::int64_t row = q.shape.k_blocks() * q.shape.block_size * q.shape.bits / 8;
  if (q.shape.bits == 8) return q.packed[static_cast<std::size_t>(n * row + k)];
  const int byte = q.packed[static_cast<std::size_t>(n * row + k / 2)];
  return k % 2 ? byte >> 4 : byte & 15;
}

int zero_point(const kernels::BlockwiseMatrix& q, std::int64_t n, std::int64_t b) {
  if (q.zero_points.empty()) return 1 << (q.shape.bits - 1);
  const std::int64_t row = (q.shape.k_blocks() * q.shape.bits + 7) / 8;
  if (q.shape.bits == 8) return q.zero_points[static_cast<std::size_t>(n * row + b)];
  const int byte = q.zero_points[static_cast<std::size_t>(n * row + b / 2)];
  return b % 2 ? byte >> 4 : byte & 15;
}

}  // namespace

LinearCase make_case(std::int64_t m, std::int64_t n, std::int64_t k, int bits, std::int64_t block_size,
                     bool symmetric, bool with_bias, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  LinearCase c;
  c.m = m;
  c.x.resize(static_cast<std::size_t>(m * k));
  for (auto& v : c.x) v = normal(rng);
  // Outliers, as real activations have: a few inputs 20x larger.
  for (std::int64_t i = 0; i < m; ++i) c.x[static_cast<std::size_t>(i * k + (i * 7) % k)] *= 20.0f;
  c.w.resize(static_cast<std::size_t>(n * k));
  for (auto& v : c.w) v = 0.05f * normal(rng);
  builder::QuantOptions o;
  o.bits = bits;
  o.block_size = block_size;
  o.symmetric = symmetric;
  o.method = builder::QuantMethod::rtn;
  o.threads = 1;
  auto q = builder::quantize_blockwise(c.w, n, k, o);
  for (float& s : q.scales) s = io::f16_to_f32(io::f32_to_f16(s));  // what the kernel stores
  c.q = kernels::BlockwiseMatrix{{n, k, bits, block_size}, std::move(q.packed), std::move(q.scales),
                                 std::move(q.zero_points)};
  if (with_bias) {
    c.bias.resize(static_cast<std::size_t>(n));
    for (auto& v : c.bias) v = normal(rng);
  }
  return c;
}

Reference reference(const LinearCase& c) {
  const auto& s = c.q.shape;
  const std::int64_t m = c.m, n_out = s.n, k = s.k, kp = s.k_padded();
  const std::int64_t act_blocks = kp / 32;
  // Activations: quant_linear.h's contract, written out again (same float operations, so
  // the same int8 codes: d = amax / 127, a = round_half_even(x * (127 / amax))).
  std::vector<int> a(static_cast<std::size_t>(m * kp), 0);
  std::vector<double> d(static_cast<std::size_t>(m * act_blocks), 0.0);
  std::vector<long> sums(static_cast<std::size_t>(m * act_blocks), 0);
  for (std::int64_t r = 0; r < m; ++r) {
    for (std::int64_t j = 0; j < act_blocks; ++j) {
      float amax = 0.0f;
      for (std::int64_t i = j * 32; i < std::min(k, j * 32 + 32); ++i) amax = std::max(amax, std::fabs(c.x[r * k + i]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      d[r * act_blocks + j] = static_cast<double>(amax / 127.0f);
      for (std::int64_t i = j * 32; i < std::min(k, j * 32 + 32); ++i) {
        const float scaled = c.x[r * k + i] * inv;
        a[r * kp + i] = static_cast<int>(std::nearbyint(scaled));
        sums[r * act_blocks + j] += a[r * kp + i];
      }
    }
  }
  Reference ref;
  const auto outputs = static_cast<std::size_t>(m * n_out);
  for (auto* v : {&ref.y, &ref.rounding, &ref.float_matmul, &ref.float_bound, &ref.dequantized, &ref.activation_bound}) {
    v->assign(outputs, 0.0);
  }
  for (std::int64_t n = 0; n < n_out; ++n) {
    // Dequantized row (double) and its per-weight error against the float weights.
    std::vector<double> wq(static_cast<std::size_t>(kp));
    for (std::int64_t i = 0; i < kp; ++i) {
      const std::int64_t b = i / s.block_size;
      wq[i] = static_cast<double>(c.q.scales[n * s.k_blocks() + b]) * (code(c.q, n, i) - zero_point(c.q, n, b));
    }
    for (std::int64_t r = 0; r < m; ++r) {
      const std::size_t o = static_cast<std::size_t>(r * n_out + n);
      const double bias = c.bias.empty() ? 0.0 : c.bias[n];
      double y = bias, magnitude = std::fabs(bias);
      for (std::int64_t b = 0; b < s.k_blocks(); ++b) {
        const double scale = c.q.scales[n * s.k_blocks() + b];
        const int z = zero_point(c.q, n, b);
        for (std::int64_t j = b * s.block_size / 32; j < (b + 1) * s.block_size / 32; ++j) {
          long dot = 0;
          for (std::int64_t i = j * 32; i < j * 32 + 32; ++i) dot += static_cast<long>(code(c.q, n, i)) * a[r * kp + i];
          const double term = scale * d[r * act_blocks + j] * static_cast<double>(dot - z * sums[r * act_blocks + j]);
          y += term;
          magnitude += std::fabs(term);
        }
      }
      double exact = bias, dequant = bias, weight_err = 0, act_err = 0, dequant_magnitude = std::fabs(bias);
      for (std::int64_t i = 0; i < k; ++i) {
        const double x = c.x[r * k + i];
        exact += x * c.w[n * k + i];
        dequant += x * wq[i];
        dequant_magnitude += std::fabs(x * wq[i]);
        weight_err += std::fabs(wq[i] - c.w[n * k + i]) * std::fabs(x);
        // |a·d - x| <= d/2, plus the float rounding of 127/amax and x·inv (a few ulps of x).
        act_err += std::fabs(wq[i]) * (d[r * act_blocks + i / 32] / 2 + 1e-6 * std::fabs(x));
      }
      ref.y[o] = y;
      ref.rounding[o] = 1e-5 * magnitude + 1e-6;
      ref.float_matmul[o] = exact;
      ref.float_bound[o] = weight_err + act_err + 1e-5 * (magnitude + dequant_magnitude) + 1e-6;
      ref.dequantized[o] = dequant;
      ref.activation_bound[o] = act_err + 1e-5 * (magnitude + dequant_magnitude) + 1e-6;
    }
  }
  return ref;
}

}  // namespace q3vl::testing
