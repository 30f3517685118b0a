// kv_attention.h's row primitives with AVX2, FMA and F16C: 8 lanes of
// kv_attention_simd.h's loops (simd_float.h's Float8). AVX2 has no masked 8- or 16-bit
// load or store, so a row's int8 or float16 tail goes through a zeroed copy.
#include <immintrin.h>

#include <cstring>

#include "kernels/kv_attention_simd.h"
#include "kernels/simd_float.h"

namespace q3vl::kernels {
namespace {

struct Avx2 : Float8 {
  static constexpr int kChunksPerPass = 2;  // 4 queries x 2 chunks = 8 of 16 ymm registers

  // The lane count (loads and stores of whole chunks take the unmasked instructions) and
  // the lanes as an all-ones / all-zeros vector.
  struct Mask {
    int lanes;
    __m256i bits;
  };
  static Mask mask(int lanes) {
    return {lanes, _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))};
  }
  static Reg load(const float* p, const Mask& m) {
    return m.lanes == kWidth ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m.bits);
  }
  static Reg load_fill(const float* p, const Mask& m, float fill) {
    return m.lanes == kWidth ? _mm256_loadu_ps(p) : _mm256_blendv_ps(set1(fill), load(p, m), _mm256_castsi256_ps(m.bits));
  }
  static void store(float* p, const Mask& m, Reg v) {
    if (m.lanes == kWidth) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, m.bits, v);
    }
  }
  static Reg load_half(const std::uint16_t* p, const Mask& m) {
    if (m.lanes == kWidth) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    alignas(16) std::uint16_t part[kWidth] = {};
    std::memcpy(part, p, static_cast<std::size_t>(m.lanes) * sizeof(std::uint16_t));
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(part)));
  }
  static void store_half(std::uint16_t* p, const Mask& m, Reg v) {
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (m.lanes == kWidth) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
      return;
    }
    alignas(16) std::uint16_t part[kWidth];
    _mm_store_si128(reinterpret_cast<__m128i*>(part), h);
    std::memcpy(p, part, static_cast<std::size_t>(m.lanes) * sizeof(std::uint16_t));
  }
  static Reg load_int8(const std::int8_t* p, const Mask& m) {
    std::int64_t part = 0;
    std::memcpy(&part, p, static_cast<std::size_t>(m.lanes));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(part)));
  }
  static float half_to_float(std::uint16_t bits) { return _cvtsh_ss(bits); }
  static Reg keep(Reg v, const Mask& m) { return _mm256_and_ps(v, _mm256_castsi256_ps(m.bits)); }

  template <int MQ>
  static void store_scores(const Reg* acc, float scale, float* out, std::int64_t stride) {
    for (int i = 0; i < MQ; ++i) out[i * stride] = scale * sum(acc[i]);
  }
};

}  // namespace

const KvAttentionIsa kKvAttentionAvx2 = kv_attention_isa<Avx2>();

}  // namespace q3vl::kernels
