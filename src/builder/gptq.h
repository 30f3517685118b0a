// GPTQ: block-wise quantization that uses what the layer's inputs look like.
//
// Round-to-nearest minimises each weight's own error. What matters is the layer's output
// error over real inputs x: E|x (W - Q)^T|^2 = sum over rows r of dw_r H dw_r^T with the
// input second-moment matrix H = sum_x x x^T [K, K]. GPTQ (Frantar et al., 2022, "GPTQ:
// Accurate Post-Training Quantization for Generative Pre-trained Transformers")
// quantizes the columns of W left to right and, after each one, moves its rounding error
// onto the columns not yet quantized along the direction that H says cancels it best:
//     U = upper Cholesky factor of H^-1   (H^-1 = U^T U)
//     for column j:  q_j = quant(w_j);  e = (w_j - q_j) / U[j, j];  w_{j+1..} -= e * U[j, j+1..]
// Block scales are chosen (QuantOptions' mse search) from the updated weights when the
// column walk enters each block, so the output format is MatMulNBits' like rtn/mse.
// H gets 1 % of its mean diagonal added (the paper's dampening) so rank-deficient
// statistics (fewer calibration tokens than K) stay invertible; an input never seen
// in calibration (zero row and column) counts as an average one.
//
// With H a multiple of the identity nothing moves and the result equals the mse method.
//
// Thread-safety: pure; uses up to options.threads threads (rows are independent).
#pragma once

#include <cstdint>
#include <span>

#include "builder/quantize.h"

namespace q3vl::builder {

// `w` [N, K] row-major (HF nn.Linear layout), `hessian` [K, K] row-major, symmetric
// positive semi-definite (any positive scale: sum or mean of x x^T). Throws
// q3vl::Error(usage) on sizes that do not match, or when H (after dampening) is not
// positive definite, which only a non-finite or non-symmetric input can cause.
QuantizedMatrix quantize_gptq(std::span<const float> w, std::int64_t n, std::int64_t k,
                              std::span<const double> hessian, const QuantOptions& options);

}  // namespace q3vl::builder
