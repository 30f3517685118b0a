#include "quant_reference.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "builder/quantize.h"
#include "io/dtype.h"
#include "kernels/weight_grid.h"

namespace q3vl::testing {
namespace {

// Value k of an LSB-first stream of `bits`-bit values, one bit at a time.
int stream_bits(const std::vector<std::uint8_t>& bytes, std::size_t offset_bytes, int bits, std::int64_t k) {
  int value = 0;
  for (int bit = 0; bit < bits; ++bit) {
    const std::int64_t at = k * bits + bit;
    value |= ((bytes[offset_bytes + static_cast<std::size_t>(at / 8)] >> (at % 8)) & 1) << bit;
  }
  return value;
}

void put_bits(std::vector<std::uint8_t>& bytes, std::size_t offset_bytes, int bits, std::int64_t k, int value) {
  for (int bit = 0; bit < bits; ++bit) {
    const std::int64_t at = k * bits + bit;
    bytes[offset_bytes + static_cast<std::size_t>(at / 8)] |= static_cast<std::uint8_t>(((value >> bit) & 1) << (at % 8));
  }
}

int code(const kernels::BlockwiseMatrix& q, std::int64_t n, std::int64_t k) {
  const std::int64_t row = q.shape.k_blocks() * q.shape.block_size * q.shape.bits / 8;
  return stream_bits(q.packed, static_cast<std::size_t>(n * row), q.shape.bits, k);
}

int zero_point(const kernels::BlockwiseMatrix& q, std::int64_t n, std::int64_t b) {
  if (q.zero_points.empty()) return 1 << (q.shape.bits - 1);
  const std::int64_t row = (q.shape.k_blocks() * q.shape.bits + 7) / 8;
  return stream_bits(q.zero_points, static_cast<std::size_t>(n * row), q.shape.bits, b);
}

float fp16(float v) { return io::f16_to_f32(io::f32_to_f16(v)); }

// Round to nearest onto `bits`-bit uniform codes or the nl grid, block by block, scales
// rounded to fp16 before the codes are chosen (so the codes are the best for the stored scale).
kernels::BlockwiseMatrix quantize_here(const std::vector<float>& w, std::int64_t n, std::int64_t k, int bits,
                                       std::int64_t block, bool symmetric, kernels::WeightGrid grid) {
  kernels::BlockwiseMatrix q;
  q.shape = {n, k, bits, block, grid};
  const std::int64_t kb = q.shape.k_blocks(), row = kb * block * bits / 8, zp_row = (kb * bits + 7) / 8;
  const bool nl = grid == kernels::WeightGrid::nl;
  const int levels = 1 << bits;
  q.packed.assign(static_cast<std::size_t>(n * row), 0);
  q.scales.assign(static_cast<std::size_t>(n * kb), 0.0f);
  if (!symmetric && !nl) q.zero_points.assign(static_cast<std::size_t>(n * zp_row), 0);
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t b = 0; b < kb; ++b) {
      const std::int64_t begin = b * block, end = std::min(k, begin + block);
      float lo = 0.0f, hi = 0.0f, extreme = 0.0f;
      for (std::int64_t i = begin; i < end; ++i) {
        const float v = w[static_cast<std::size_t>(r * k + i)];
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        if (std::fabs(v) > std::fabs(extreme)) extreme = v;
      }
      int zero = levels / 2;
      float scale = 0.0f;
      if (nl) {
        scale = fp16(extreme / 127.0f);  // the grid's 127 lands on the extreme, sign included
      } else if (symmetric) {
        scale = fp16(std::max(-lo, hi) / static_cast<float>(levels / 2 - 1));
      } else {
        scale = fp16((hi - lo) / static_cast<float>(levels - 1));
        zero = scale > 0.0f ? std::clamp(static_cast<int>(std::lround(-lo / scale)), 0, levels - 1) : levels / 2;
        put_bits(q.zero_points, static_cast<std::size_t>(r * zp_row), bits, b, zero);
      }
      q.scales[static_cast<std::size_t>(r * kb + b)] = scale;
      for (std::int64_t i = begin; i < begin + block; ++i) {
        const float v = i < end ? w[static_cast<std::size_t>(r * k + i)] : 0.0f;
        int c = zero;
        if (nl) {
          double best = 1e300;
          for (int g = 0; g < 16; ++g) {
            const double err = std::fabs(static_cast<double>(scale) * kernels::kNl4Grid[static_cast<std::size_t>(g)] - v);
            if (err < best) best = err, c = g;
          }
        } else if (scale > 0.0f) {
          c = std::clamp(static_cast<int>(std::lround(v / scale)) + zero, 0, levels - 1);
        }
        put_bits(q.packed, static_cast<std::size_t>(r * row), bits, i, c);
      }
    }
  }
  return q;
}

}  // namespace

int weight_level(const kernels::BlockwiseMatrix& q, std::int64_t n, std::int64_t k) {
  const int c = code(q, n, k);
  if (q.shape.grid == kernels::WeightGrid::nl) return kernels::kNl4Grid[static_cast<std::size_t>(c)];
  return c - zero_point(q, n, k / q.shape.block_size);
}

kernels::BlockwiseMatrix quantize_weights(const std::vector<float>& w, std::int64_t n, std::int64_t k, int bits,
                                          std::int64_t block_size, bool symmetric, kernels::WeightGrid grid) {
  if (grid == kernels::WeightGrid::nl || bits == 5 || bits == 6) {
    return quantize_here(w, n, k, bits, block_size, symmetric, grid);
  }
  builder::QuantOptions o;
  o.bits = bits;
  o.block_size = block_size;
  o.symmetric = symmetric;
  o.method = builder::QuantMethod::rtn;
  o.threads = 1;
  auto q = builder::quantize_blockwise(w, n, k, o);
  for (float& s : q.scales) s = fp16(s);  // what the kernel stores
  return kernels::BlockwiseMatrix{{n, k, bits, block_size}, std::move(q.packed), std::move(q.scales),
                                  std::move(q.zero_points)};
}

LinearCase make_case(std::int64_t m, std::int64_t n, std::int64_t k, int bits, std::int64_t block_size,
                     bool symmetric, bool with_bias, unsigned seed, kernels::WeightGrid grid) {
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
  c.q = quantize_weights(c.w, n, k, bits, block_size, symmetric, grid);
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
  for (std::int64_t r = 0; r < m; ++r) {
    for (std::int64_t j = 0; j < act_blocks; ++j) {
      float amax = 0.0f;
      for (std::int64_t i = j * 32; i < std::min(k, j * 32 + 32); ++i) amax = std::max(amax, std::fabs(c.x[r * k + i]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      d[r * act_blocks + j] = static_cast<double>(amax / 127.0f);
      for (std::int64_t i = j * 32; i < std::min(k, j * 32 + 32); ++i) {
        const float scaled = c.x[r * k + i] * inv;
        a[r * kp + i] = static_cast<int>(std::nearbyint(scaled));
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
      wq[i] = static_cast<double>(c.q.scales[n * s.k_blocks() + b]) * weight_level(c.q, n, i);
    }
    for (std::int64_t r = 0; r < m; ++r) {
      const std::size_t o = static_cast<std::size_t>(r * n_out + n);
      const double bias = c.bias.empty() ? 0.0 : c.bias[n];
      double y = bias, magnitude = std::fabs(bias);
      for (std::int64_t b = 0; b < s.k_blocks(); ++b) {
        const double scale = c.q.scales[n * s.k_blocks() + b];
        for (std::int64_t j = b * s.block_size / 32; j < (b + 1) * s.block_size / 32; ++j) {
          // Σ (level · a) directly: the kernels' Σ u·a − z·S rearranged, exact in long.
          long dot = 0;
          for (std::int64_t i = j * 32; i < j * 32 + 32; ++i) dot += static_cast<long>(weight_level(c.q, n, i)) * a[r * kp + i];
          const double term = scale * d[r * act_blocks + j] * static_cast<double>(dot);
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
