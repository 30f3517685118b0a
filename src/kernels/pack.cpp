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

// The bits of one code in a tile-block (quant_linear.h): up to two (byte, shift, width)
// pieces, the low 4 bits first. 8-bit codes are one piece of 8.
struct CodePlace {
  std::int64_t byte[2];
  int shift[2];
  int width[2];
  int pieces;
};

CodePlace code_place(int bits, std::int64_t r, std::int64_t k) {
  const std::int64_t base = k / kActBlock * kGroupBytes * bits;  // the 32-k sub-block
  const std::int64_t kk = k % kActBlock, i = kk / 4, j = kk % 4, lane = r * 4 + j;
  if (bits == 8) return {{base + i * kGroupBytes + lane, 0}, {0, 0}, {8, 0}, 1};
  const CodePlace nibble{{base + i / 2 * kGroupBytes + lane, 0}, {static_cast<int>(i % 2) * 4, 0}, {4, 0}, 1};
  if (bits == 4) return nibble;
  const std::int64_t planes = base + 4 * kGroupBytes;
  if (bits == 5) return {{nibble.byte[0], planes + lane}, {nibble.shift[0], static_cast<int>(i)}, {4, 1}, 2};
  return {{nibble.byte[0], planes + i / 4 * kGroupBytes + lane}, {nibble.shift[0], static_cast<int>(i % 4) * 2}, {4, 2}, 2};
}

void put_stream_value(std::uint8_t* stream, int bits, std::int64_t k, int value) {
  for (int bit = 0; bit < bits; ++bit) {
    const std::int64_t at = k * bits + bit;
    stream[at / 8] |= static_cast<std::uint8_t>(((value >> bit) & 1) << (at % 8));
  }
}

}  // namespace

int stream_value(const std::uint8_t* stream, int bits, std::int64_t k) {
  // A value spans at most two bytes (bits <= 8); the second is read only when it does.
  const std::int64_t at = k * bits;
  const int offset = static_cast<int>(at % 8);
  int window = stream[at / 8];
  if (offset + bits > 8) window |= stream[at / 8 + 1] << 8;
  return (window >> offset) & ((1 << bits) - 1);
}

int tile_code(const std::uint8_t* tile_block, int bits, std::int64_t r, std::int64_t k) {
  const CodePlace place = code_place(bits, r, k);
  int code = 0, done = 0;
  for (int p = 0; p < place.pieces; ++p) {
    code |= ((tile_block[place.byte[p]] >> place.shift[p]) & ((1 << place.width[p]) - 1)) << done;
    done += place.width[p];
  }
  return code;
}

PackedWeightsView PackedMatrix::view() const {
  return PackedWeightsView{shape, weight.data(), scales.data(), zero_points.empty() ? nullptr : zero_points.data()};
}

PackedMatrix pack(const BlockwiseMatrix& m) {
  const QuantLinearShape& s = m.shape;
  validate(s, "pack");
  const std::int64_t k_blocks = s.k_blocks();
  const std::int64_t row_bytes = k_blocks * s.block_size * s.bits / 8, zp_row_bytes = (k_blocks * s.bits + 7) / 8;
  check_size("packed", m.packed.size(), s.n * row_bytes);
  check_size("scales", m.scales.size(), s.n * k_blocks);
  if (!m.zero_points.empty()) {
    if (s.grid == WeightGrid::nl) {
      throw_error(ErrorKind::usage, "q3vl.QuantLinear", "zero_points", "none with grid \"nl\"",
                  std::to_string(m.zero_points.size()) + " values");
    }
    check_size("zero_points", m.zero_points.size(), s.n * zp_row_bytes);
  }

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
        const int zero = real && !m.zero_points.empty()
                             ? stream_value(m.zero_points.data() + n * zp_row_bytes, s.bits, b)
                             : symmetric_zero;
        for (std::int64_t k = 0; k < s.block_size; ++k) {
          const int code = real ? stream_value(m.packed.data() + n * row_bytes, s.bits, b * s.block_size + k) : zero;
          const CodePlace place = code_place(s.bits, r, k);
          for (int q = 0, done = 0; q < place.pieces; done += place.width[q++]) {
            const int piece = (code >> done) & ((1 << place.width[q]) - 1);
            blob[place.byte[q]] |= static_cast<std::uint8_t>(piece << place.shift[q]);
          }
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
        put_stream_value(m.packed.data() + n * row_bytes, s.bits, b * s.block_size + k, tile_code(blob, s.bits, r, k));
      }
      const auto slot = static_cast<std::size_t>(tb * kTileRows + r);
      m.scales[static_cast<std::size_t>(n * k_blocks + b)] = io::f16_to_f32(p.scales[slot]);
      if (!m.zero_points.empty()) put_stream_value(m.zero_points.data() + n * zp_row_bytes, s.bits, b, p.zero_points[slot]);
    }
  }
  return m;
}

}  // namespace q3vl::kernels
