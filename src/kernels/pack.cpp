#include "kernels/pack.h"

#include <string>

#include "io/dtype.h"
#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

void check_size(const char* what, std::size_t got, std::int64_t expected) {
  if (got != static_cast<std::size_t>(expected)) {
    throw_error(ErrorKind::usage, "q3vl.QuantLinear", what, std::to_string(expected) + " values",
                std::to_string(got));
  }
}

// Byte offset of code (tile row r, block-local k) inside one tile-block.
std::int64_t code_byte(int bits, std::int64_t r, std::int64_t k, int& shift) {
  if (bits == 8) {
    shift = 0;
    return (k / 4) * kGroupBytes + r * 4 + k % 4;
  }
  const std::int64_t g = k / 8, j = k % 8;
  shift = j < 4 ? 0 : 4;
  return g * kGroupBytes + r * 4 + j % 4;
}

int blockwise_code(const BlockwiseMatrix& m, std::int64_t n, std::int64_t k) {
  const std::int64_t row_bytes = m.shape.k_blocks() * m.shape.block_size * m.shape.bits / 8;
  if (m.shape.bits == 8) return m.packed[static_cast<std::size_t>(n * row_bytes + k)];
  const std::uint8_t byte = m.packed[static_cast<std::size_t>(n * row_bytes + k / 2)];
  return k % 2 == 0 ? byte & 0x0F : byte >> 4;
}

int blockwise_zero_point(const BlockwiseMatrix& m, std::int64_t n, std::int64_t b) {
  if (m.zero_points.empty()) return 1 << (m.shape.bits - 1);
  const std::int64_t row_bytes = (m.shape.k_blocks() * m.shape.bits + 7) / 8;
  if (m.shape.bits == 8) return m.zero_points[static_cast<std::size_t>(n * row_bytes + b)];
  const std::uint8_t byte = m.zero_points[static_cast<std::size_t>(n * row_bytes + b / 2)];
  return b % 2 == 0 ? byte & 0x0F : byte >> 4;
}

}  // namespace

PackedWeightsView PackedMatrix::view() const {
  return PackedWeightsView{shape, weight.data(), scales.data(), zero_points.empty() ? nullptr : zero_points.data()};
}

PackedMatrix pack(const BlockwiseMatrix& m) {
  const QuantLinearShape& s = m.shape;
  validate(s, "pack");
  const std::int64_t k_blocks = s.k_blocks();
  check_size("packed", m.packed.size(), s.n * k_blocks * s.block_size * s.bits / 8);
  check_size("scales", m.scales.size(), s.n * k_blocks);
  if (!m.zero_points.empty()) check_size("zero_points", m.zero_points.size(), s.n * ((k_blocks * s.bits + 7) / 8));

  PackedMatrix p;
  p.shape = s;
  p.weight.assign(static_cast<std::size_t>(s.weight_bytes()), 0);
  p.scales.assign(static_cast<std::size_t>(s.scale_count()), 0);
  if (!m.zero_points.empty()) p.zero_points.assign(static_cast<std::size_t>(s.scale_count()), 0);
  const int symmetric_zero = 1 << (s.bits - 1);
  for (std::int64_t t = 0; t < s.n_tiles(); ++t) {
    for (std::int64_t b = 0; b < k_blocks; ++b) {
      const std::int64_t tb = t * k_blocks + b;
      std::uint8_t* blob = p.weight.data() + tb * s.tile_block_bytes();
      for (std::int64_t r = 0; r < kTileRows; ++r) {
        const std::int64_t n = t * kTileRows + r;
        const bool real = n < s.n;
        const int zero = real ? blockwise_zero_point(m, n, b) : symmetric_zero;
        for (std::int64_t k = 0; k < s.block_size; ++k) {
          const int code = real ? blockwise_code(m, n, b * s.block_size + k) : zero;
          int shift = 0;
          // The index first: in `a[f(shift)] |= x << shift` C++17 evaluates the right side first.
          const std::int64_t at = code_byte(s.bits, r, k, shift);
          blob[at] |= static_cast<std::uint8_t>(code << shift);
        }
        const auto slot = static_cast<std::size_t>(tb * kTileRows + r);
        p.scales[slot] = real ? io::f32_to_f16(m.scales[static_cast<std::size_t>(n * k_blocks + b)]) : 0;
        if (!p.zero_points.empty()) p.zero_points[slot] = static_cast<std::uint8_t>(zero);
      }
    }
  }
  return p;
}

BlockwiseMatrix unpack(const PackedMatrix& p) {
  const QuantLinearShape& s = p.shape;
  const std::int64_t k_blocks = s.k_blocks();
  const std::int64_t row_bytes = k_blocks * s.block_size * s.bits / 8;
  const std::int64_t zp_row_bytes = (k_blocks * s.bits + 7) / 8;
  BlockwiseMatrix m;
  m.shape = s;
  m.packed.assign(static_cast<std::size_t>(s.n * row_bytes), 0);
  m.scales.assign(static_cast<std::size_t>(s.n * k_blocks), 0.0f);
  if (!p.zero_points.empty()) m.zero_points.assign(static_cast<std::size_t>(s.n * zp_row_bytes), 0);
  for (std::int64_t n = 0; n < s.n; ++n) {
    const std::int64_t t = n / kTileRows, r = n % kTileRows;
    for (std::int64_t b = 0; b < k_blocks; ++b) {
      const std::int64_t tb = t * k_blocks + b;
      const std::uint8_t* blob = p.weight.data() + tb * s.tile_block_bytes();
      for (std::int64_t k = 0; k < s.block_size; ++k) {
        int shift = 0;
        const std::int64_t at = code_byte(s.bits, r, k, shift);
        const int code = (blob[at] >> shift) & ((1 << s.bits) - 1);
        const std::int64_t kk = b * s.block_size + k;
        if (s.bits == 8) {
          m.packed[static_cast<std::size_t>(n * row_bytes + kk)] = static_cast<std::uint8_t>(code);
        } else {
          m.packed[static_cast<std::size_t>(n * row_bytes + kk / 2)] |= static_cast<std::uint8_t>(code << (kk % 2 * 4));
        }
      }
      const auto slot = static_cast<std::size_t>(tb * kTileRows + r);
      m.scales[static_cast<std::size_t>(n * k_blocks + b)] = io::f16_to_f32(p.scales[slot]);
      if (!m.zero_points.empty()) {
        const int zero = p.zero_points[slot];
        if (s.bits == 8) {
          m.zero_points[static_cast<std::size_t>(n * zp_row_bytes + b)] = static_cast<std::uint8_t>(zero);
        } else {
          m.zero_points[static_cast<std::size_t>(n * zp_row_bytes + b / 2)] |= static_cast<std::uint8_t>(zero << (b % 2 * 4));
        }
      }
    }
  }
  return m;
}

}  // namespace q3vl::kernels
