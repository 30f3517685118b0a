// Float vectors for the ISA files: e^x on 8 lanes (AVX2 + FMA) and 16 lanes (AVX-512), and
// the float operations that the loops written over a vector type (kv_attention_simd.h,
// bf16_simd.h) share. Each ISA file's vector type derives from Float8 or Float16 and adds
// what only its loops need (masks, float16 or bf16 loads and stores).
//
// Internal linkage on purpose: each ISA file is compiled with its own -m flags, and one
// inline function shared across them could let the linker keep the AVX-512 build of it
// for the AVX2 path. Each part is defined only when the file's flags enable its ISA.
#pragma once

#include <immintrin.h>

namespace q3vl::kernels {
namespace {

// e^x as 2^n · p(r) with n = round(x / ln 2), r = x − n ln 2 (ln 2 split in two so r is
// exact to float rounding), p the degree-7 Taylor polynomial (relative error below 1e-8 on
// |r| <= ln2/2, so the result is within float rounding of expf). x is clamped to
// [−87, 88], where 2^n stays a normal float; SwiGLU needs no more (silu(g) is then within
// 1e-36 of its limit 0 or g), nor a softmax of scores minus their maximum (a weight below
// e^-87 next to the maximum's 1 is lost in float rounding anyway).
struct ExpConstants {
  static constexpr float kMin = -87.0f, kMax = 88.0f;
  static constexpr float kLog2e = 1.44269504088896341f;
  static constexpr float kLn2High = 0.693145751953125f, kLn2Low = 1.42860682030941723e-6f;
  // p's coefficients, highest degree first: 1/7!, 1/6!, ..., 1/1!, 1/0!.
  static constexpr float kTaylor[8] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
};

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 exp8(__m256 x) {
  using C = ExpConstants;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(C::kMin)), _mm256_set1_ps(C::kMax));
  const __m256 n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(C::kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::kLn2High), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::kLn2Low), r);
  __m256 p = _mm256_set1_ps(C::kTaylor[0]);
  for (int i = 1; i < 8; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::kTaylor[i]));
  const __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(two_n));
}

// 8 float lanes.
struct Float8 {
  using Reg = __m256;
  static constexpr int kWidth = 8;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float f) { return _mm256_set1_ps(f); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }  // a·b + c
  static Reg fmsub(Reg a, Reg b, Reg c) { return _mm256_fmsub_ps(a, b, c); }  // a·b − c
  static Reg exp_nonpositive(Reg x) { return exp8(x); }                       // e^x, x <= 0
  // Lane reductions by folding halves: lane i meets lane i + 4, then i + 2, then i + 1.
  static float sum(Reg v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
  }
  static float max_lane(Reg v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
  }
};
#endif

#if defined(__AVX512F__) && defined(__FMA__)
// exp8 on 16 lanes; 2^n applied by vscalefps (the same product for the integral n here).
inline __m512 exp16(__m512 x) {
  using C = ExpConstants;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(C::kMin)), _mm512_set1_ps(C::kMax));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(C::kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::kLn2High), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::kLn2Low), r);
  __m512 p = _mm512_set1_ps(C::kTaylor[0]);
  for (int i = 1; i < 8; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::kTaylor[i]));
  return _mm512_scalef_ps(p, n);
}

// 16 float lanes.
struct Float16 {
  using Reg = __m512;
  static constexpr int kWidth = 16;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float f) { return _mm512_set1_ps(f); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }  // a·b + c
  static Reg fmsub(Reg a, Reg b, Reg c) { return _mm512_fmsub_ps(a, b, c); }  // a·b − c
  static Reg exp_nonpositive(Reg x) { return exp16(x); }                      // e^x, x <= 0
  // Lane reductions: the two halves meet, then Float8's folds (lane i meets i + 8, i + 4,
  // i + 2, i + 1). The halves come from __builtin_shufflevector because GCC 12 flags the
  // 512-bit shuffles and extracts as reading an uninitialized value (their
  // _mm512_undefined_ps, GCC bug 105593) wherever it inlines them.
  static __m256 low_half(Reg v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7); }
  static __m256 high_half(Reg v) { return __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15); }
  static float sum(Reg v) { return Float8::sum(_mm256_add_ps(low_half(v), high_half(v))); }
  static float max_lane(Reg v) { return Float8::max_lane(_mm256_max_ps(low_half(v), high_half(v))); }
};
#endif

}  // namespace
}  // namespace q3vl::kernels
