// x (float) -> int8 per 32-value block, with the block's scale and code sum
// (quant_linear.h gives the formula). The zero-point correction needs the sum.
//
// Thread-safety: quantize_activation_rows writes only rows [row_begin, row_end) of `out`,
// so disjoint row ranges may run concurrently.
#pragma once

#include <cstdint>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

// Sizes `out` for m rows of k values (padded to k_padded, a multiple of 32 >= k).
void prepare_activations(std::int64_t m, std::int64_t k_padded, QuantizedActivations& out);

// Quantizes rows [row_begin, row_end) of x [m, k] (row stride k) into `out` (prepared).
// A block of zeros gets scale 0 and codes 0. Rounding: to nearest, ties to even (what
// vcvtps2dq does, so every ISA path makes the same codes).
// This is the portable version; dispatch.h's per-ISA table has vectorized ones.
void quantize_activation_rows(const float* x, std::int64_t k, std::int64_t row_begin, std::int64_t row_end,
                              QuantizedActivations& out);

}  // namespace q3vl::kernels
