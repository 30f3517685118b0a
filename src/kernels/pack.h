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

// MatMulNBits' layout (shared/ort.md): packed uint8 [N, k_blocks, B·bits/8] LSB-first,
// scales float [N, k_blocks], zero points uint8 [N, ceil(k_blocks·bits/8)] (4-bit: two
// per byte, block 2i in the low nibble) or empty for symmetric.
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

// Throws q3vl::Error(usage) when the shape is invalid (validate) or a vector's size does
// not match it. Padding rows get scale 0 and the symmetric zero point.
PackedMatrix pack(const BlockwiseMatrix& m);

// The inverse (scales come back fp16-rounded, as float). unpack(pack(m)) == m when m's
// scales are fp16-representable.
BlockwiseMatrix unpack(const PackedMatrix& p);

}  // namespace q3vl::kernels
