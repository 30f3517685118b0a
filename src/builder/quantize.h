// Block-wise weight quantization, done in C++ while the builder streams weights.
//
// A weight W [N, K] (HF nn.Linear layout: N output features, K input features) is cut
// into blocks of `block_size` consecutive input features per output row; each block has
// one float scale s and (asymmetric only) an integer zero point z. Two grids:
//   uniform (bits 4, 5, 6 or 8):
//     q = clamp(round(w / s) + z, 0, 2^bits - 1),   w ≈ (q - z) * s
//     Symmetric quantization uses z = 2^(bits-1) for every block (MatMulNBits' default
//     when no zero points are given): levels -2^(bits-1) .. 2^(bits-1) - 1.
//   nl (bits 4, symmetric only): the non-uniform levels of kernels/weight_grid.h,
//     w ≈ s * kNl4Grid[q], q the nearest level to w / s (ties to the upper level).
// The last block of a row is zero-padded when K is not a multiple of block_size.
//
// Methods:
//   rtn  round-to-nearest. Symmetric: the block's largest-magnitude weight m maps onto the
//        extra negative level, s = -m / 2^(bits-1) (all 2^bits levels used; s is negative
//        when m > 0), unless that would clip a weight of the other sign by more than half
//        a step, then s = max|w| / (2^(bits-1) - 1). Asymmetric: s = (max - min) / (2^bits - 1).
//        Every weight is within half a step of its level.
//        nl: s = m / 127, m the block's signed extreme (m lands on the top level 127).
//   mse  per-block search over shrunken ranges (clip ratios 1.0, 0.98, ..., 0.70) of both
//        symmetric grids (or of the asymmetric range), keeping the candidate with the
//        smallest squared reconstruction error. nl: s = r·m/127 and s = -r·m/114 (m onto
//        either end of the grid, so both scale signs) for r = 0.70, 0.75, ..., 1.20, then
//        the best r ± 0.025.
//        Never worse than rtn per block, since rtn's scale is one of the candidates.
//   gptq mse's per-block scales, chosen block by block while the quantization error of
//        each column is compensated in the columns not yet quantized, weighted by the
//        layer's input statistics (builder/gptq.h). Needs calibration; quantize_blockwise
//        refuses it.
//
// Layout of the result (for 4 and 8 bits what MatMulNBits reads, see
// docs/reference/onnxruntime.md; kernels/pack.h reads every width):
//   packed       uint8 [N, k_blocks, block_size * bits / 8]: per (row, block) an LSB-first
//                bit stream, element i at bits [i·bits, (i+1)·bits) (4 bits: element 2i is
//                the low nibble; nl stores its level index the same way)
//   scales       float [N, k_blocks]
//   zero_points  (asymmetric) uint8 [N, ceil(k_blocks / 2)] for 4 bits (block 2i in the low
//                nibble), uint8 [N, k_blocks] for 5, 6 and 8 bits; empty when symmetric
//
// Thread-safety: pure functions; quantize_blockwise uses up to `threads` worker threads.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace q3vl::builder {

enum class QuantMethod { rtn, mse, gptq };

// What a code stands for: uniform steps, or the nl4 levels (kernels/weight_grid.h).
enum class WeightGrid { uniform, nl };
const char* to_string(WeightGrid grid);  // "uniform" / "nl" (the QuantLinear `grid` attribute)

// "rtn" / "mse" / "gptq"; throws q3vl::Error(usage) otherwise.
QuantMethod parse_quant_method(std::string_view text);
const char* to_string(QuantMethod method);

struct QuantOptions {
  int bits = 4;                 // 4, 5, 6 or 8 (nl: 4)
  std::int64_t block_size = 32;  // power of two, >= 16
  bool symmetric = true;         // nl: must be true
  WeightGrid grid = WeightGrid::uniform;
  QuantMethod method = QuantMethod::mse;
  int threads = 0;  // 0 = hardware concurrency
};

struct QuantizedMatrix {
  std::int64_t n = 0, k = 0, k_blocks = 0;
  int bits = 4;
  std::int64_t block_size = 32;
  WeightGrid grid = WeightGrid::uniform;
  std::vector<std::uint8_t> packed;
  std::vector<float> scales;
  std::vector<std::uint8_t> zero_points;  // empty = symmetric
};

// Throws q3vl::Error(usage) for unsupported bits / grid / block sizes or w.size() != n * k.
QuantizedMatrix quantize_blockwise(std::span<const float> w, std::int64_t n, std::int64_t k,
                                   const QuantOptions& options);

// The float matrix [N, K] the quantized one stands for (tests, error measurement).
std::vector<float> dequantize(const QuantizedMatrix& q);

// What the kernels compute with: dequantize() of quantize_blockwise(), after rounding
// every scale to float16 when `f16_scales` (as q3vl's kernels/pack.h stores them;
// MatMulNBits keeps float32 scales). `q3vl build --fake-quant` writes these as float32.
std::vector<float> fake_quantize(std::span<const float> w, std::int64_t n, std::int64_t k,
                                 const QuantOptions& options, bool f16_scales);

// Per-block steps, shared by quantize_blockwise and GPTQ (builder/gptq.h).
struct BlockParams {
  float scale = 0.0f;
  int zero_point = 0;
};
// The block's scale (and zero point) by options.method (rtn, or the mse search for mse
// and gptq). `x` holds block_size values (a partial last block zero-padded).
BlockParams choose_block_params(std::span<const float> x, const QuantOptions& options);
// The code of one weight on the uniform grid: clamp(round(w / s) + z, 0, max_q).
int quantize_value(float w, const BlockParams& p, int max_q);
// The code of one weight on options' grid (uniform: the above with max_q = 2^bits - 1;
// nl: the nearest level), and the weight a code stands for.
int quantize_value(float w, const BlockParams& p, const QuantOptions& options);
float dequantize_value(int code, const BlockParams& p, const QuantOptions& options);

// An all-zero [N, K] result in options' layout; throws q3vl::Error(usage) for bad bits /
// block size.
QuantizedMatrix empty_quantized_matrix(std::int64_t n, std::int64_t k, const QuantOptions& options);
// Writes block `block` of row `row`: its block_size codes, scale and zero point.
void store_block(QuantizedMatrix& q, std::int64_t row, std::int64_t block, const BlockParams& p,
                 std::span<const int> codes);

}  // namespace q3vl::builder
