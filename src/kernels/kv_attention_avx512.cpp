// kv_attention.h's row primitives with AVX-512 (F, BW, VL, DQ) and F16C: 16 lanes of
// kv_attention_simd.h's loops (simd_float.h's Float16), tails masked in k registers.
#include <immintrin.h>

#include "kernels/kv_attention_simd.h"
#include "kernels/simd_float.h"

namespace q3vl::kernels {
namespace {

// Lane sums of four vectors, in lanes 0..3: halves, then quarters, then the 4 lanes of
// each quarter fold into its first (a third of the shuffles of four separate reductions).
__m128 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  // [a.q0+a.q2, a.q1+a.q3, b.q0+b.q2, b.q1+b.q3] for the pairs (a0, a1), (a2, a3)
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(a0, a1, 0x44), _mm512_shuffle_f32x4(a0, a1, 0xEE));
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(a2, a3, 0x44), _mm512_shuffle_f32x4(a2, a3, 0xEE));
  // quarter i: the 4 partial lanes of a_i
  __m512 u = _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88), _mm512_shuffle_f32x4(s01, s23, 0xDD));
  u = _mm512_add_ps(u, _mm512_permute_ps(u, 0x4E));
  u = _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1));
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), u));
}

struct Avx512 : Float16 {
  static constexpr int kChunksPerPass = 4;  // 4 queries x 4 chunks = 16 of 32 zmm registers

  using Mask = __mmask16;
  static Mask mask(int lanes) { return static_cast<Mask>((1u << lanes) - 1u); }
  static Reg load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static Reg load_fill(const float* p, Mask m, float fill) { return _mm512_mask_loadu_ps(set1(fill), m, p); }
  static void store(float* p, Mask m, Reg v) { _mm512_mask_storeu_ps(p, m, v); }
  static Reg load_half(const std::uint16_t* p, Mask m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static void store_half(std::uint16_t* p, Mask m, Reg v) {
    _mm256_mask_storeu_epi16(p, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  static Reg load_int8(const std::int8_t* p, Mask m) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
  }
  static float half_to_float(std::uint16_t bits) { return _cvtsh_ss(bits); }
  static Reg keep(Reg v, Mask m) { return _mm512_maskz_mov_ps(m, v); }

  // Four queries' sums reduce together (sum4).
  template <int MQ>
  static void store_scores(const Reg* acc, float scale, float* out, std::int64_t stride) {
    if constexpr (MQ == 4) {
      alignas(16) float sums[4];
      _mm_store_ps(sums, _mm_mul_ps(sum4(acc[0], acc[1], acc[2], acc[3]), _mm_set1_ps(scale)));
      for (int i = 0; i < 4; ++i) out[i * stride] = sums[i];
    } else {
      for (int i = 0; i < MQ; ++i) out[i * stride] = scale * sum(acc[i]);
    }
  }
};

}  // namespace

const KvAttentionIsa kKvAttentionAvx512 = kv_attention_isa<Avx512>();

}  // namespace q3vl::kernels
