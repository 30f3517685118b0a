// e^x on 8 float lanes (AVX + FMA), for the ISA files that need it (the AVX-512 SwiGLU
// epilogue, the AVX2 attention softmax).
//
// Internal linkage on purpose: each ISA file is compiled with its own -m flags, and one
// inline function shared across them could let the linker keep the AVX-512 build of it
// for the AVX2 path.
#pragma once

#include <immintrin.h>

namespace q3vl::kernels {
namespace {

// e^x, 8 lanes: 2^n · p(r) with n = round(x / ln 2), r = x − n ln 2 (ln 2 split in two
// so r is exact to float rounding), p the degree-7 Taylor polynomial (relative error
// below 1e-8 on |r| <= ln2/2, so the result is within float rounding of expf). x is
// clamped to [−87, 88], where 2^n stays a normal float; SwiGLU needs no more (silu(g)
// is then within 1e-36 of its limit 0 or g), nor a softmax of scores minus their maximum
// (a weight below e^-87 next to the maximum's 1 is lost in float rounding anyway).
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) {
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  }
  const __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(two_n));
}

}  // namespace
}  // namespace q3vl::kernels
