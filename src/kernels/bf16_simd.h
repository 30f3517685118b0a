// bf16_paths.h's softmax_row and round_row written once over a vector type V, for every
// bf16 path (bf16_avx512.cpp: 16 lanes, bf16_avx2.cpp: 8, bf16_scalar.cpp: 1).
//
// V provides: Reg, kWidth, load(const float*), set1(f), max(a, b), mul(a, b), fmsub(a, b, c)
// (a·b − c), add(a, b), exp_nonpositive(x) (e^x for x <= 0), max_lane(v), sum(v), and
// store_bf16(uint16_t*, v) (to_bf16 of each lane, NaNs quieted as to_bf16 does).
//
// Internal linkage on purpose: each path's file instantiates these with its own -m flags.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/bf16_linear.h"

namespace q3vl::kernels {
namespace {

template <class V>
float softmax_row(const float* s, std::int64_t n, float scale, std::uint16_t* p) {
  const typename V::Reg scale_v = V::set1(scale);
  typename V::Reg top_v = V::set1(-INFINITY);
  std::int64_t j = 0;
  for (; j + V::kWidth <= n; j += V::kWidth) top_v = V::max(top_v, V::mul(scale_v, V::load(s + j)));
  float top = V::max_lane(top_v);
  for (std::int64_t t = j; t < n; ++t) top = std::fmax(top, scale * s[t]);
  const typename V::Reg shift = V::set1(top);
  typename V::Reg sum_v = V::set1(0.0f);
  for (j = 0; j + V::kWidth <= n; j += V::kWidth) {
    const typename V::Reg e = V::exp_nonpositive(V::fmsub(scale_v, V::load(s + j), shift));
    sum_v = V::add(sum_v, e);
    V::store_bf16(p + j, e);
  }
  float sum = V::sum(sum_v);
  for (; j < n; ++j) {  // the last n mod kWidth scores
    const float e = std::exp(scale * s[j] - top);
    sum += e;
    p[j] = to_bf16(e);
  }
  if (n % 2 != 0) p[n] = 0;
  return sum;
}

template <class V>
void round_row(const float* x, std::int64_t n, std::uint16_t* out) {
  std::int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) V::store_bf16(out + i, V::load(x + i));
  for (; i < n; ++i) out[i] = to_bf16(x[i]);
}

}  // namespace
}  // namespace q3vl::kernels
