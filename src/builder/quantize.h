// Block-wise weight quantization for com.microsoft.MatMulNBits, done in C++ while the
// builder streams weights.
//
// A weight W [N, K] (HF nn.Linear layout: N output features, K input features) is cut
// into blocks of `block_size` consecutive input features per output row; each block has
// one float scale s and (asymmetric only) an integer zero point z:
//     q = clamp(round(w / s) + z, 0, 2^bits - 1),   w ≈ (q - z) * s
// Symmetric quantization uses z = 2^(bits-1) for every block (MatMulNBits' default when
// no zero points are given). The last block of a row is zero-padded when K is not a
// multiple of block_size.
//
// Methods:
//   rtn  round-to-nearest. Symmetric: the block's largest-magnitude weight m maps onto the
//        extra negative level, s = -m / 2^(bits-1) (all 2^bits levels used; s is negative
//        when m > 0), unless that would clip a weight of the other sign by more than half
//        a step, then s = max|w| / (2^(bits-1) - 1). Asymmetric: s = (max - min) / (2^bits - 1).
//        Every weight is within half a step of its level.
//   mse  per-block search over shrunken ranges (clip ratios 1.0, 0.98, ..., 0.70) of both
//        symmetric grids (or of the asymmetric range), keeping the candidate with the
//        smallest squared reconstruction error. Never worse than rtn per block, since
//        rtn's scale is one of the candidates.
//   gptq mse's per-block scales, chosen block by block while the quantization error of
//        each column is compensated in the columns not yet quantized, weighted by the
//        layer's input statistics (builder/gptq.h). Needs calibration; quantize_blockwise
//        refuses it.
//
// Layout of the result (what MatMulNBits reads, see docs/reference/onnxruntime.md):
//   packed       uint8 [N, k_blocks, block_size * bits / 8], LSB-first: element 2i is the
//                low nibble for 4 bits
//   scales       float [N, k_blocks]
//   zero_points  uint8 [N, ceil(k_blocks * bits / 8)] (asymmetric), empty when symmetric
//
// Thread-safety: pure functions; quantize_blockwise uses up to `threads` worker threads.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace q3vl::builder {

enum class QuantMethod { rtn, mse, gptq };

// "rtn" / "mse" / "gptq"; throws q3vl::Error(usage) otherwise.
QuantMethod parse_quant_method(std::string_view text);
const char* to_string(QuantMethod method);

struct QuantOptions {
  int bits = 4;                 // 4 or 8
  std::int64_t block_size = 32;  // power of two, >= 16
  bool symmetric = true;
  QuantMethod method = QuantMethod::mse;
  int threads = 0;  // 0 = hardware concurrency
};

struct QuantizedMatrix {
  std::int64_t n = 0, k = 0, k_blocks = 0;
  int bits = 4;
  std::int64_t block_size = 32;
  std::vector<std::uint8_t> packed;
  std::vector<float> scales;
  std::vector<std::uint8_t> zero_points;  // empty = symmetric
};

// Throws q3vl::Error(usage) for unsupported bits / block sizes or w.size() != n * k.
QuantizedMatrix quantize_blockwise(std::span<const float> w, std::int64_t n, std::int64_t k,
                                   const QuantOptions& options);

// The float matrix [N, K] the quantized one stands for (tests, error measurement).
std::vector<float> dequantize(const QuantizedMatrix& q);

// Per-block steps, shared by quantize_blockwise and GPTQ (builder/gptq.h).
struct BlockParams {
  float scale = 0.0f;
  int zero_point = 0;
};
// The block's scale (and zero point) by options.method (rtn, or the mse search for mse
// and gptq). `x` holds block_size values (a partial last block zero-padded).
BlockParams choose_block_params(std::span<const float> x, const QuantOptions& options);
// The code of one weight: clamp(round(w / s) + z, 0, max_q).
int quantize_value(float w, const BlockParams& p, int max_q);

// An all-zero [N, K] result in options' layout; throws q3vl::Error(usage) for bad bits /
// block size.
QuantizedMatrix empty_quantized_matrix(std::int64_t n, std::int64_t k, const QuantOptions& options);
// Writes block `block` of row `row`: its block_size codes, scale and zero point.
void store_block(QuantizedMatrix& q, std::int64_t row, std::int64_t block, const BlockParams& p,
                 std::span<const int> codes);

}  // namespace q3vl::builder
