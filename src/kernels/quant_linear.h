// q3vl.QuantLinear: y = x W^T (+ bias) with W stored as 4-, 5-, 6- or 8-bit blocks in
// the kernel's own interleaved layout, and x quantized to int8 on the fly.
//
// ---- The math --------------------------------------------------------------------
// W [N, K] is cut into blocks of B = block_size (32, 64 or 128) input features per row.
// Block b of row n has codes q and a scale s[n,b] (fp16). Two grids:
//   uniform (bits 4, 5, 6, 8): q in [0, 2^bits), a zero point z[n,b] (symmetric:
//           z = 2^(bits-1) everywhere), w = s * (q - z);
//   nl      (bits 4 only, "nl4"): w = s * kNl4Grid[q] (weight_grid.h), no zero points.
//           The kernels multiply u = kNl4Grid[q] + 128 (an unsigned byte, <= 255) with a
//           zero point of 128, so both grids are "unsigned byte u, zero point z".
// K is zero-padded to Kp = k_blocks * B (any K works; the padding codes never meet a
// non-zero activation).
// Each row of x is cut into 32-value activation blocks j (kActBlock; B is a multiple of
// it, so one weight block holds B/32 of them), quantized to int8 with one scale each:
//     d[m,j] = max|x[m, 32j..32j+31]| / 127,  a = round(x / d),  S[m,j] = Σ a
// and then, with u the code (uniform) or kNl4Grid[q] + 128 (nl):
//     y[m,n] = bias[n] + Σ_b s[n,b] · Σ_{j in b} d[m,j] · (Σ_{k in j} u[n,k]·a[m,k] − z[n,b]·S[m,j])
// The inner sums are exact int32 (|u·a| ≤ 255·127, ≤ 32 terms), so every ISA path gives
// the same integers; only the float combination may round differently.
// Why 32-value activation blocks whatever B is: the activation error is what this op adds
// on top of the weight error, and a per-32 scale keeps it at llama.cpp Q8_0's level even
// for B = 128 (costs one float multiply-add per 32 k per row pair, nothing in memory).
//
// ---- The weight layout (what the builder writes and ONNX Runtime memory-maps) ---------
// Rows are grouped in tiles of 16 (kTileRows; N is padded to a multiple of 16 with
// zero-scale rows). For each tile t and block b, in that order ([n_tiles, k_blocks, ...]):
//
//   weight  uint8 [n_tiles, k_blocks, 16·B·bits/8]  one tile-block = B/32 sub-blocks of
//                                                   32 k, each 16·32·bits/8 = 64·bits bytes
//                                                   of 64-byte vectors; in each vector,
//                                                   dword r = row r of the tile (k below
//                                                   counts from the sub-block's start):
//       8-bit: 8 groups, group g covers k = 4g .. 4g+3: byte j of dword r = q[r, 4g+j].
//       4-bit (uniform and nl): 4 groups, group g covers k = 8g .. 8g+7:
//         byte j of dword r (j = 0..3) = q[r, 8g+j] | q[r, 8g+4+j] << 4
//         so (group & 0x0F) gives k 8g..8g+3 and (group >> 4) gives k 8g+4..8g+7, each
//         16 rows x 4 consecutive k: exactly one vpdpbusd operand against 4 broadcast
//         activation bytes. Call these 8 operands the sub-block's nibble vectors:
//         nibble vector i (i = 0..7) covers k = 4i + j, j = 0..3 (group i/2, low nibble
//         for even i, high for odd).
//       5- and 6-bit: first the 4 groups of the codes' low 4 bits exactly as 4-bit, then
//         the high bits in planes with the same byte positions (byte 4r + j = row r,
//         k = 4i + j of nibble vector i):
//           5-bit, one 64-byte plane:  bit i of byte 4r+j = bit 4 of q[r, 4i+j]
//           6-bit, two 64-byte planes: plane c, bits 2i'..2i'+1 of byte 4r+j = bits 4..5 of
//                  q[r, 16c + 4i' + j]     (nibble vector i = 4c + i')
//         so nibble vector i's high bits land at bits 4 (..5) with one 16-bit shift of the
//         plane by 4 - i (5-bit) or 4 - 2i' (6-bit; none for i = 4 / i' = 2) and one
//         ternary-logic op (nibble | shifted & 0x10 or 0x30): two instructions.
//
//         one sub-block (32 k x 16 rows), 6-bit:
//           | group 0 | group 1 | group 2 | group 3 | plane 0 | plane 1 |   6 x 64 bytes
//            low nibbles of k 0..7, 8..15, ...         bits 4,5 of k 0..15, k 16..31
//
//         64-byte vector:  | row0: b0 b1 b2 b3 | row1: b0..b3 | ... | row15: b0..b3 |
//
//   scales  fp16  [n_tiles, k_blocks, 16]  s of the tile's 16 rows for block b
//   zero points uint8 [n_tiles, k_blocks, 16] (asymmetric uniform only), one byte per
//                                             (row, block)
//
// Bytes a decode step reads per weight: bits/8 + 2/B (+ 1/B with zero points); 4-bit
// block 32 symmetric: 0.5 + 0.0625 = 0.5625 (Q4_0 reads 0.5625 too); 6-bit block 32:
// 0.8125 (Q6_K: 0.8203).
//
// Thread-safety: everything here is a pure function of its arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace q3vl::kernels {

inline constexpr std::int64_t kTileRows = 16;
inline constexpr std::int64_t kActBlock = 32;
inline constexpr std::int64_t kGroupBytes = 64;

// The ONNX node this library implements (ort_domain.h registers it).
inline constexpr const char* kDomain = "q3vl";
inline constexpr const char* kQuantLinearOp = "QuantLinear";

// What a code stands for (the math above).
enum class WeightGrid { uniform, nl };

// "uniform" / "nl": the ONNX attribute's spelling.
const char* to_string(WeightGrid grid);

// The five formats the tile kernels are instantiated for.
enum class WeightFormat { int4, int5, int6, int8, nl4 };

struct QuantLinearShape {
  std::int64_t n = 0;           // output features
  std::int64_t k = 0;           // input features
  int bits = 4;                 // 4, 5, 6 or 8 (nl: 4)
  std::int64_t block_size = 32;  // 32, 64 or 128
  WeightGrid grid = WeightGrid::uniform;

  // Precondition: validate() holds.
  WeightFormat format() const {
    if (grid == WeightGrid::nl) return WeightFormat::nl4;
    return bits == 4 ? WeightFormat::int4 : bits == 5 ? WeightFormat::int5 : bits == 6 ? WeightFormat::int6
                                                                                      : WeightFormat::int8;
  }

  std::int64_t k_blocks() const { return (k + block_size - 1) / block_size; }
  std::int64_t k_padded() const { return k_blocks() * block_size; }
  std::int64_t n_tiles() const { return (n + kTileRows - 1) / kTileRows; }
  std::int64_t tile_block_bytes() const { return kTileRows * block_size * bits / 8; }
  std::int64_t weight_bytes() const { return n_tiles() * k_blocks() * tile_block_bytes(); }
  std::int64_t scale_count() const { return n_tiles() * k_blocks() * kTileRows; }
};

// Throws q3vl::Error(usage) naming `where` unless bits is 4, 5, 6 or 8, the grid is
// uniform or nl with bits 4, block_size is 32, 64 or 128, and n, k are positive.
void validate(const QuantLinearShape& shape, const char* where);

// A packed weight, viewed (non-owning: the ONNX Runtime tensors or the test's buffers
// outlive every call that gets the view).
struct PackedWeightsView {
  QuantLinearShape shape;
  const std::uint8_t* weight = nullptr;       // [n_tiles, k_blocks, tile_block_bytes]
  const std::uint16_t* scales = nullptr;      // fp16 [n_tiles, k_blocks, 16]
  const std::uint8_t* zero_points = nullptr;  // [n_tiles, k_blocks, 16]; null = symmetric (always for nl)
};

// x quantized per 32-value block (see the math above). Row stride = k_padded.
struct QuantizedActivations {
  std::int64_t m = 0;
  std::int64_t k_padded = 0;
  std::vector<std::int8_t> values;  // [m, k_padded], zero past k
  std::vector<float> scales;        // [m, k_padded / 32]
  std::vector<std::int32_t> sums;   // [m, k_padded / 32]

  std::int64_t blocks_per_row() const { return k_padded / kActBlock; }
};

// Runs `fn(data, i)` for i in [0, total), possibly in parallel; returns when all are
// done. The op passes ONNX Runtime's ParallelFor; tests may pass a plain loop.
using ParallelFor = void (*)(void* context, std::size_t total, void (*fn)(void*, std::size_t), void* data);
// The plain loop (context unused).
void serial_for(void* context, std::size_t total, void (*fn)(void*, std::size_t), void* data);

struct Parallelism {
  ParallelFor run = serial_for;
  void* context = nullptr;  // passed back to `run` (the op's OrtKernelContext)
};

// y [m, n] = x [m, k] W^T (+ bias [n] when non-null) on the active ISA (dispatch.h).
// Preconditions: x holds m*k floats, y m*n; validate(w.shape) holds. Never throws.
void quant_linear(const PackedWeightsView& w, const float* x, std::int64_t m, const float* bias, float* y,
                  const Parallelism& parallel = {});

// ---- q3vl.QuantSwiGLU: the MLP's gate and up projections and SwiGLU in one pass -------
//     y[m, i] = silu(x_m · Wg_i) · (x_m · Wu_i),   silu(g) = g / (1 + e^-g),   i < I
// with both products computed exactly as QuantLinear computes one output (the math
// above). Gate and up rows are stacked into one QuantLinear matrix of
// n = 2 · round_up(I, 8) rows, ordered so that every 16-row tile holds 8 (gate, up) pairs:
//
//     tile t:  rows 0..7 = gate rows 8t .. 8t+7,   rows 8..15 = up rows 8t .. 8t+7
//              (rows past I: all-zero weights; their outputs are never stored)
//
// so a tile's 16 accumulators pair up in registers (AVX-512: the two 256-bit halves of
// one zmm; AVX2: the tile's two ymm) and the [M, 2I] gate/up result is never written to
// memory. The packed weight, scales and zero points are otherwise QuantLinear's.
inline constexpr const char* kQuantSwiGLUOp = "QuantSwiGLU";
inline constexpr std::int64_t kSwiGLUPairs = kTileRows / 2;

// Where gate row i and up row i go in the stacked matrix (the order above).
inline std::int64_t swiglu_gate_row(std::int64_t i) { return i / kSwiGLUPairs * kTileRows + i % kSwiGLUPairs; }
inline std::int64_t swiglu_up_row(std::int64_t i) { return swiglu_gate_row(i) + kSwiGLUPairs; }
// Rows of the stacked matrix for intermediate size I: 2 · round_up(I, 8).
inline std::int64_t swiglu_stacked_rows(std::int64_t intermediate) {
  return (intermediate + kSwiGLUPairs - 1) / kSwiGLUPairs * kTileRows;
}

// y [m, intermediate] as above. Preconditions: validate(w.shape) holds and
// w.shape.n == swiglu_stacked_rows(intermediate); x holds m*k floats. Never throws.
void quant_swiglu(const PackedWeightsView& w, std::int64_t intermediate, const float* x, std::int64_t m, float* y,
                  const Parallelism& parallel = {});

}  // namespace q3vl::kernels
