// Independent references for q3vl.QuantLinear (src/kernels/quant_linear.h), computed in
// double precision from MatMulNBits' plain blockwise layout (never from the tile
// layout), plus the error bounds the tests check against.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/pack.h"

namespace q3vl::testing {

// A case: x [m, k], the original float weights [n, k] and their quantized form (scales
// already rounded to fp16, so pack() keeps them exactly), optional bias [n].
struct LinearCase {
  std::int64_t m = 0;
  std::vector<float> x;
  std::vector<float> w;
  kernels::BlockwiseMatrix q;
  std::vector<float> bias;
};

// Deterministic random case (weights and inputs ~ N(0, 1)-like, a few large inputs).
// Bits 4 and 8 (uniform) are quantized by the builder's quantizer; 5, 6 and the nl grid
// by a round-to-nearest written here (the builder has no such formats), into the
// blockwise layout pack.h documents (LSB-first bit streams). nl ignores `symmetric`.
LinearCase make_case(std::int64_t m, std::int64_t n, std::int64_t k, int bits, std::int64_t block_size,
                     bool symmetric, bool with_bias, unsigned seed,
                     kernels::WeightGrid grid = kernels::WeightGrid::uniform);

// w [n, k] quantized as make_case quantizes it (scales rounded to fp16).
kernels::BlockwiseMatrix quantize_weights(const std::vector<float>& w, std::int64_t n, std::int64_t k, int bits,
                                          std::int64_t block_size, bool symmetric, kernels::WeightGrid grid);

// The weight value of (row n, input k) in units of its block's scale: code - zero point,
// or kNl4Grid[code]; read bit by bit from the blockwise layout.
int weight_level(const kernels::BlockwiseMatrix& q, std::int64_t n, std::int64_t k);

// Per output [m, n]: the value, and bounds on |value - other| for the comparisons.
struct Reference {
  std::vector<double> y;             // the quantized math (int8 activations), exact in double
  std::vector<double> rounding;      // float-rounding allowance for y (1e-5 × Σ|terms|)
  std::vector<double> float_matmul;  // x W^T with the original float weights
  std::vector<double> float_bound;   // |y - float_matmul| allowance (weight + activation error)
  std::vector<double> dequantized;   // x Ŵ^T with the dequantized weights (MatMulNBits' exact math)
  std::vector<double> activation_bound;  // |y - dequantized| allowance (activation error only)
};

Reference reference(const LinearCase& c);

}  // namespace q3vl::testing
