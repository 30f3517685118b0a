#include "builder/quantize.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "io/dtype.h"
#include "kernels/weight_grid.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

// std::nearbyint's result in the default rounding mode (ties to even) for |x| < 2^22,
// inline and vectorizable: baseline x86-64 has no rounding instruction, so nearbyint is a
// libm call, and the mse search rounds each weight 33 times. Every w / s here is within
// 2^bits / 0.7.
float round_half_even(float x) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23: the sum keeps no fraction bits
  return (x + kShift) - kShift;
}

// Candidate clip ratios for the mse search: 1.0 (= rtn) down to 0.70.
constexpr int kSearchSteps = 16;
constexpr float kSearchStep = 0.02f;
// nl: ratios 0.70, 0.75, ..., 1.20 (a level grid can gain from stretching past the
// extreme too: the extreme then sits between two levels), then the best one ± 0.025.
// Coarse to fine: half the candidates of a 0.025 sweep, as the error is smooth in r.
constexpr int kNlSearchSteps = 11;
constexpr float kNlSearchFirst = 0.70f, kNlSearchStep = 0.05f;

// nl: the nearest level to t = w / s, by table. Every midpoint between two grid levels is
// a multiple of 0.5, so all t in [i/2, (i+1)/2) share one nearest level (ties go up): the
// table is indexed by floor(2t), clamped to the range past which the end levels win.
class NlTable {
 public:
  static constexpr int kHalfRange = 512;  // |2t| beyond 2 * 127 + 2 always maps to an end level
  NlTable() {
    const auto& grid = kernels::kNl4Grid;
    for (int i = 0; i < 2 * kHalfRange; ++i) {
      const double t = (i - kHalfRange) / 2.0 + 0.25;
      int best = 0;
      for (int q = 1; q < static_cast<int>(grid.size()); ++q) {
        if (std::abs(t - grid[q]) <= std::abs(t - grid[best])) best = q;
      }
      code_[i] = static_cast<std::uint8_t>(best);
    }
  }
  int code(float t) const {
    const float two_t = std::clamp(2.0f * t, -static_cast<float>(kHalfRange), kHalfRange - 0.5f);
    // two_t + kHalfRange >= 0, so the truncating conversion is floor.
    return code_[static_cast<int>(two_t + static_cast<float>(kHalfRange))];
  }

 private:
  std::uint8_t code_[2 * kHalfRange] = {};
};

const NlTable& nl_table() {
  static const NlTable table;
  return table;
}

int nl_code(float w, float scale) {
  // scale 0 (an all-zero block): the level nearest 0 decodes to 0 * level = 0.
  return nl_table().code(scale == 0.0f ? 0.0f : w / scale);
}

float nl_value(int code, float scale) { return scale * static_cast<float>(kernels::kNl4Grid[code]); }

double nl_block_error(std::span<const float> x, float scale) {
  double error = 0.0;
  for (const float w : x) {
    const float d = w - nl_value(nl_code(w, scale), scale);
    error += static_cast<double>(d) * static_cast<double>(d);
  }
  return error;
}

// Squared reconstruction error of the block under `p`. The search calls this 33 times per
// block, so it is written for the vectorizer: eight independent float partial sums, no
// integer round trip (the codes are whole numbers in float), no branch per weight.
double block_error(std::span<const float> x, const BlockParams& p, int max_q) {
  constexpr std::size_t kLanes = 8;
  float partial[kLanes] = {};
  const float zero_point = static_cast<float>(p.zero_point), top = static_cast<float>(max_q);
  const float scale = p.scale == 0.0f ? 1.0f : p.scale;
  const float keep = p.scale == 0.0f ? 0.0f : 1.0f;  // scale 0: every weight decodes to 0
  const std::size_t n = x.size() / kLanes * kLanes;
  for (std::size_t i = 0; i < n; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) {
      const float w = x[i + l];
      const float q = std::min(std::max(round_half_even(w / scale) + zero_point, 0.0f), top);
      const float d = w - keep * (q - zero_point) * scale;
      partial[l] += d * d;
    }
  }
  double error = 0.0;
  for (const float e : partial) error += e;
  for (std::size_t i = n; i < x.size(); ++i) {
    const float r = static_cast<float>(quantize_value(x[i], p, max_q) - p.zero_point) * p.scale;
    error += static_cast<double>(x[i] - r) * static_cast<double>(x[i] - r);
  }
  return error;
}

// What the candidates need to know about a block, found in one pass.
struct BlockRange {
  float extreme = 0.0f;   // the weight with the largest magnitude, sign kept
  float opposite = 0.0f;  // largest magnitude among weights of the other sign than `extreme`
  float lo = 0.0f, hi = 0.0f;  // min and max, widened to contain 0
};

BlockRange block_range(std::span<const float> x) {
  BlockRange r;
  for (float w : x) {
    if (std::abs(w) > std::abs(r.extreme)) r.extreme = w;
    r.lo = std::min(r.lo, w);
    r.hi = std::max(r.hi, w);
  }
  // The other side's extent is the other end of the (0-containing) range.
  r.opposite = r.extreme > 0.0f ? -r.lo : r.extreme < 0.0f ? r.hi : 0.0f;
  return r;
}

// Symmetric grids. MatMulNBits' symmetric zero point 2^(bits-1) leaves levels -2^(bits-1) ..
// 2^(bits-1) - 1: one more level on the negative side. `full_grid` maps the block's largest
// magnitude onto that extra level (a negative scale when that weight is positive), so all
// 2^bits levels are used, as ONNX Runtime's own quantizer does; the plain grid
// s = max|w| / (2^(bits-1) - 1) uses one level less but never clips the other side.
BlockParams symmetric_candidate(const BlockRange& r, int bits, float ratio, bool full_grid) {
  const int half = 1 << (bits - 1);
  BlockParams p;
  p.zero_point = half;
  p.scale = full_grid ? -ratio * r.extreme / static_cast<float>(half)
                      : ratio * std::abs(r.extreme) / static_cast<float>(half - 1);
  return p;
}

// The range always contains 0 so that zero weights (and padding) stay exact.
BlockParams asymmetric_candidate(const BlockRange& r, int bits, float ratio) {
  const int max_q = (1 << bits) - 1;
  BlockParams p;
  p.scale = ratio * (r.hi - r.lo) / static_cast<float>(max_q);
  p.zero_point = p.scale == 0.0f
                     ? 0
                     : static_cast<int>(std::clamp(std::nearbyint(-ratio * r.lo / p.scale), 0.0f,
                                                   static_cast<float>(max_q)));
  return p;
}

// rtn: the full symmetric grid unless it would clip the other side (weights whose sign
// differs from the extreme one: on the full grid they only reach 2^(bits-1) - 1 levels)
// by more than half a step, then the plain grid, so every weight is within half a step;
// asymmetric: min..max.
BlockParams rtn(const BlockRange& r, const QuantOptions& o) {
  if (!o.symmetric) return asymmetric_candidate(r, o.bits, 1.0f);
  const BlockParams full = symmetric_candidate(r, o.bits, 1.0f, true);
  const float top_level = static_cast<float>((1 << (o.bits - 1)) - 1) + 0.5f;
  if (r.opposite <= top_level * std::abs(full.scale)) return full;
  return symmetric_candidate(r, o.bits, 1.0f, false);
}

// nl: the candidate putting r·m on the top level 127 (top = true) or on the bottom level
// -114, for m the block's signed extreme.
BlockParams nl_candidate(const BlockRange& r, float ratio, bool top) {
  const auto& grid = kernels::kNl4Grid;
  BlockParams p;
  p.scale = top ? ratio * r.extreme / static_cast<float>(grid.back())
                : ratio * r.extreme / static_cast<float>(grid.front());
  return p;
}

BlockParams choose_nl_params(std::span<const float> x, const BlockRange& range, QuantMethod method) {
  BlockParams best = nl_candidate(range, 1.0f, true);
  if (method == QuantMethod::rtn) return best;
  double best_error = nl_block_error(x, best.scale);
  float best_ratio = 1.0f;
  bool best_top = true;
  auto consider = [&](float ratio, bool top) {
    const BlockParams p = nl_candidate(range, ratio, top);
    const double e = nl_block_error(x, p.scale);
    if (e < best_error) {
      best_error = e;
      best = p;
      best_ratio = ratio;
      best_top = top;
    }
  };
  for (int i = 0; i < kNlSearchSteps; ++i) {
    for (const bool top : {true, false}) consider(kNlSearchFirst + kNlSearchStep * static_cast<float>(i), top);
  }
  const float coarse = best_ratio;
  const bool coarse_top = best_top;
  consider(coarse - kNlSearchStep / 2, coarse_top);
  consider(coarse + kNlSearchStep / 2, coarse_top);
  return best;
}

// Zero points per row: two per byte at 4 bits, one byte per block otherwise.
std::int64_t zero_point_row_bytes(std::int64_t k_blocks, int bits) {
  return bits == 4 ? (k_blocks + 1) / 2 : k_blocks;
}

}  // namespace

int quantize_value(float w, const BlockParams& p, int max_q) {
  if (p.scale == 0.0f) return p.zero_point;
  const float q = round_half_even(w / p.scale) + static_cast<float>(p.zero_point);
  return static_cast<int>(std::clamp(q, 0.0f, static_cast<float>(max_q)));
}

int quantize_value(float w, const BlockParams& p, const QuantOptions& o) {
  if (o.grid == WeightGrid::nl) return nl_code(w, p.scale);
  return quantize_value(w, p, (1 << o.bits) - 1);
}

float dequantize_value(int code, const BlockParams& p, const QuantOptions& o) {
  if (o.grid == WeightGrid::nl) return nl_value(code, p.scale);
  return static_cast<float>(code - p.zero_point) * p.scale;
}

const char* to_string(WeightGrid grid) { return grid == WeightGrid::nl ? "nl" : "uniform"; }

BlockParams choose_block_params(std::span<const float> x, const QuantOptions& o) {
  const BlockRange range = block_range(x);
  if (o.grid == WeightGrid::nl) return choose_nl_params(x, range, o.method);
  const int max_q = (1 << o.bits) - 1;
  BlockParams best = rtn(range, o);
  if (o.method == QuantMethod::rtn) return best;
  double best_error = block_error(x, best, max_q);
  auto consider = [&](const BlockParams& p) {
    const double e = block_error(x, p, max_q);
    if (e < best_error) {
      best_error = e;
      best = p;
    }
  };
  for (int i = 0; i < kSearchSteps; ++i) {
    const float ratio = 1.0f - kSearchStep * static_cast<float>(i);
    if (o.symmetric) {
      consider(symmetric_candidate(range, o.bits, ratio, true));
      consider(symmetric_candidate(range, o.bits, ratio, false));
    } else {
      consider(asymmetric_candidate(range, o.bits, ratio));
    }
  }
  return best;
}

void store_block(QuantizedMatrix& q, std::int64_t row, std::int64_t block, const BlockParams& p,
                 std::span<const int> codes) {
  const std::int64_t blob = q.block_size * q.bits / 8;
  std::uint8_t* out = q.packed.data() + (row * q.k_blocks + block) * blob;
  std::fill_n(out, blob, std::uint8_t{0});
  // LSB-first bit stream: element i at bits [i·bits, (i+1)·bits); a code may straddle bytes.
  for (std::int64_t i = 0; i < q.block_size; ++i) {
    const std::int64_t bit = i * q.bits;
    const unsigned value = static_cast<unsigned>(codes[i]) << (bit % 8);
    out[bit / 8] = static_cast<std::uint8_t>(out[bit / 8] | (value & 0xFF));
    if ((bit % 8) + q.bits > 8) out[bit / 8 + 1] = static_cast<std::uint8_t>(out[bit / 8 + 1] | (value >> 8));
  }
  q.scales[static_cast<std::size_t>(row * q.k_blocks + block)] = p.scale;
  if (!q.zero_points.empty()) {
    std::uint8_t* zp = q.zero_points.data() + row * zero_point_row_bytes(q.k_blocks, q.bits);
    if (q.bits == 4) {
      zp[block / 2] = static_cast<std::uint8_t>(zp[block / 2] | (p.zero_point << (4 * (block % 2))));
    } else {
      zp[block] = static_cast<std::uint8_t>(p.zero_point);
    }
  }
}

QuantizedMatrix empty_quantized_matrix(std::int64_t n, std::int64_t k, const QuantOptions& options) {
  if (options.bits != 4 && options.bits != 5 && options.bits != 6 && options.bits != 8) {
    throw_error(ErrorKind::usage, "", "bits", "4, 5, 6 or 8", std::to_string(options.bits));
  }
  if (options.grid == WeightGrid::nl && (options.bits != 4 || !options.symmetric)) {
    throw_error(ErrorKind::usage, "", "grid nl", "4 bits, symmetric",
                std::to_string(options.bits) + " bits, " + (options.symmetric ? "symmetric" : "asymmetric"));
  }
  const std::int64_t bs = options.block_size;
  if (bs < 16 || (bs & (bs - 1)) != 0) {
    throw_error(ErrorKind::usage, "", "--block-size", "a power of two >= 16", std::to_string(bs));
  }
  QuantizedMatrix q;
  q.n = n;
  q.k = k;
  q.bits = options.bits;
  q.block_size = bs;
  q.grid = options.grid;
  q.k_blocks = (k + bs - 1) / bs;
  q.packed.assign(static_cast<std::size_t>(n * q.k_blocks * bs * options.bits / 8), 0);
  q.scales.assign(static_cast<std::size_t>(n * q.k_blocks), 0.0f);
  if (!options.symmetric) {
    q.zero_points.assign(static_cast<std::size_t>(n * zero_point_row_bytes(q.k_blocks, options.bits)), 0);
  }
  return q;
}

namespace {

void quantize_rows(std::span<const float> w, std::int64_t row_begin, std::int64_t row_end,
                   const QuantOptions& o, QuantizedMatrix& q) {
  const std::int64_t bs = o.block_size;
  std::vector<float> block(static_cast<std::size_t>(bs));
  std::vector<int> codes(static_cast<std::size_t>(bs));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    for (std::int64_t b = 0; b < q.k_blocks; ++b) {
      const std::int64_t begin = b * bs;
      const std::int64_t count = std::min(bs, q.k - begin);
      std::fill(block.begin(), block.end(), 0.0f);
      std::copy_n(w.begin() + r * q.k + begin, count, block.begin());
      const BlockParams p = choose_block_params(block, o);
      for (std::int64_t i = 0; i < bs; ++i) codes[i] = quantize_value(block[i], p, o);
      store_block(q, r, b, p, codes);
    }
  }
}

}  // namespace

QuantMethod parse_quant_method(std::string_view text) {
  if (text == "rtn") return QuantMethod::rtn;
  if (text == "mse") return QuantMethod::mse;
  if (text == "gptq") return QuantMethod::gptq;
  throw_error(ErrorKind::usage, "", "--quant-method", "rtn, mse or gptq", std::string(text));
}

const char* to_string(QuantMethod method) {
  switch (method) {
    case QuantMethod::rtn: return "rtn";
    case QuantMethod::mse: return "mse";
    case QuantMethod::gptq: return "gptq";
  }
  return "?";
}

QuantizedMatrix quantize_blockwise(std::span<const float> w, std::int64_t n, std::int64_t k,
                                   const QuantOptions& options) {
  if (n <= 0 || k <= 0 || static_cast<std::int64_t>(w.size()) != n * k) {
    throw_error(ErrorKind::usage, "", "quantize_blockwise", std::to_string(n * k) + " values",
                std::to_string(w.size()));
  }
  if (options.method == QuantMethod::gptq) {
    throw_error(ErrorKind::usage, "", "quantize_blockwise", "rtn or mse (gptq needs input statistics)", "gptq");
  }
  QuantizedMatrix q = empty_quantized_matrix(n, k, options);
  // Rows are independent, so splitting them over threads gives the same bytes.
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const std::int64_t threads =
      std::clamp<std::int64_t>(options.threads > 0 ? options.threads : hw, 1, n);
  std::vector<std::thread> workers;
  for (std::int64_t t = 0; t < threads; ++t) {
    const std::int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    workers.emplace_back([&, begin, end] { quantize_rows(w, begin, end, options, q); });
  }
  for (auto& worker : workers) worker.join();
  return q;
}

std::vector<float> dequantize(const QuantizedMatrix& q) {
  std::vector<float> w(static_cast<std::size_t>(q.n * q.k));
  const std::int64_t blob = q.block_size * q.bits / 8;
  const std::int64_t zp_row = zero_point_row_bytes(q.k_blocks, q.bits);
  QuantOptions o;
  o.bits = q.bits;
  o.grid = q.grid;
  for (std::int64_t r = 0; r < q.n; ++r) {
    for (std::int64_t c = 0; c < q.k; ++c) {
      const std::int64_t b = c / q.block_size, bit = (c % q.block_size) * q.bits;
      const std::uint8_t* blk = q.packed.data() + (r * q.k_blocks + b) * blob;
      unsigned stream = blk[bit / 8];
      if ((bit % 8) + q.bits > 8) stream |= static_cast<unsigned>(blk[bit / 8 + 1]) << 8;
      const int code = static_cast<int>((stream >> (bit % 8)) & ((1u << q.bits) - 1));
      BlockParams p{q.scales[static_cast<std::size_t>(r * q.k_blocks + b)], 1 << (q.bits - 1)};
      if (!q.zero_points.empty()) {
        const std::uint8_t byte = q.zero_points[r * zp_row + (q.bits == 4 ? b / 2 : b)];
        p.zero_point = q.bits == 4 ? (byte >> (4 * (b % 2))) & 0xF : byte;
      }
      w[r * q.k + c] = dequantize_value(code, p, o);
    }
  }
  return w;
}

std::vector<float> fake_quantize(std::span<const float> w, std::int64_t n, std::int64_t k,
                                 const QuantOptions& options, bool f16_scales) {
  QuantizedMatrix q = quantize_blockwise(w, n, k, options);
  if (f16_scales) {
    for (float& s : q.scales) s = io::f16_to_f32(io::f32_to_f16(s));
  }
  return dequantize(q);
}

}  // namespace q3vl::builder
