// Converts between com.microsoft.MatMulNBits' blockwise layout (what builder/quantize.h
// produces) and q3vl.QuantLinear's interleaved tile layout (quant_linear.h). The codes
// are kept exactly; scales are rounded to fp16 once, here.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

// MatMulNBits' layout (shared/ort.md), extended to every bit width the same way: each
// row's codes are one LSB-first bit stream, packed uint8 [N, k_blocks, B·bits/8], code k
// of row n starting at bit k·bits of the row (4-bit: two per byte, even k in the low
// nibble; 5- and 6-bit codes straddle bytes); scales float [N, k_blocks]; zero points
// likewise one LSB-first stream per row, uint8 [N, ceil(k_blocks·bits/8)], block b's at
// bit b·bits, or empty for symmetric. shape.grid nl: the 4-bit layout, codes index
// kNl4Grid, zero points always empty.
struct BlockwiseMatrix {
  QuantLinearShape shape;
  std::vector<std::uint8_t> packed;
  std::vector<float> scales;
  std::vector<std::uint8_t> zero_points;
};

// The kernel's layout; view() is valid while this object lives and is not modified.
struct PackedMatrix {
  QuantLinearShape shape;
  std::vector<std::uint8_t> weight;       // [n_tiles, k_blocks, tile_block_bytes]
  std::vector<std::uint16_t> scales;      // fp16 [n_tiles, k_blocks, 16]
  std::vector<std::uint8_t> zero_points;  // [n_tiles, k_blocks, 16]; empty = symmetric

  PackedWeightsView view() const;
};

// Throws q3vl::Error(usage) when the shape is invalid (validate), a vector's size does
// not match it, or zero points come with the nl grid. Padding rows get scale 0 and the symmetric zero point.
PackedMatrix pack(const BlockwiseMatrix& m);

// The inverse (scales come back fp16-rounded, as float). unpack(pack(m)) == m when m's
// scales are fp16-representable.
BlockwiseMatrix unpack(const PackedMatrix& p);

// Code of (tile row r, block-local k) inside one tile-block of quant_linear.h's layout:
// the one reading of the layout that pack, unpack and the scalar kernel share.
int tile_code(const std::uint8_t* tile_block, int bits, std::int64_t r, std::int64_t k);

// Code k (or zero point k) of an LSB-first stream of `bits`-bit values.
int stream_value(const std::uint8_t* stream, int bits, std::int64_t k);

}  // namespace q3vl::kernels
