// kv_attention.h's row primitives with AVX-512 (F, BW, VL) and F16C: a cached float16
// row becomes float32 in registers (vcvtph2ps), never in memory. head_dim need not be a
// multiple of 16: the last chunk of a row is masked.
#include <immintrin.h>

#include "kernels/kv_attention.h"

namespace q3vl::kernels {
namespace {

__mmask16 tail_mask(std::int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

__m512 load_half(const std::uint16_t* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

void scores(const float* q, std::int64_t count_q, const std::uint16_t* keys, std::int64_t count_t,
            std::int64_t head_dim, float scale, float* out, std::int64_t stride) {
  const std::int64_t chunks = (head_dim + 15) / 16;
  const __mmask16 last = tail_mask(head_dim - 16 * (chunks - 1));
  constexpr std::int64_t kMaxChunks = 16;  // head_dim <= 256 keeps the row in registers
  for (std::int64_t t = 0; t < count_t; ++t) {
    const std::uint16_t* k = keys + t * head_dim;
    if (chunks <= kMaxChunks) {
      __m512 row[kMaxChunks];
      for (std::int64_t c = 0; c < chunks; ++c) row[c] = load_half(k + 16 * c, c + 1 == chunks ? last : 0xFFFF);
      for (std::int64_t m = 0; m < count_q; ++m) {
        const float* qm = q + m * head_dim;
        __m512 acc = _mm512_setzero_ps();
        for (std::int64_t c = 0; c < chunks; ++c) {
          acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(c + 1 == chunks ? last : 0xFFFF, qm + 16 * c), row[c], acc);
        }
        out[m * stride + t] = scale * _mm512_reduce_add_ps(acc);
      }
    } else {
      for (std::int64_t m = 0; m < count_q; ++m) {
        const float* qm = q + m * head_dim;
        __m512 acc = _mm512_setzero_ps();
        for (std::int64_t c = 0; c < chunks; ++c) {
          const __mmask16 mask = c + 1 == chunks ? last : 0xFFFF;
          acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, qm + 16 * c), load_half(k + 16 * c, mask), acc);
        }
        out[m * stride + t] = scale * _mm512_reduce_add_ps(acc);
      }
    }
  }
}

void accumulate(const float* w, std::int64_t count_q, std::int64_t stride, const std::uint16_t* values,
                std::int64_t count_t, std::int64_t head_dim, float* out) {
  const std::int64_t chunks = (head_dim + 15) / 16;
  const __mmask16 last = tail_mask(head_dim - 16 * (chunks - 1));
  for (std::int64_t t = 0; t < count_t; ++t) {
    const std::uint16_t* v = values + t * head_dim;
    for (std::int64_t c = 0; c < chunks; ++c) {
      const __mmask16 mask = c + 1 == chunks ? last : 0xFFFF;
      const __m512 row = load_half(v + 16 * c, mask);
      for (std::int64_t m = 0; m < count_q; ++m) {
        float* o = out + m * head_dim + 16 * c;
        const __m512 wt = _mm512_set1_ps(w[m * stride + t]);
        _mm512_mask_storeu_ps(o, mask, _mm512_fmadd_ps(wt, row, _mm512_maskz_loadu_ps(mask, o)));
      }
    }
  }
}

// e^x for x <= 0 (scores minus their max): 2^n · p(r), n = round(x / ln 2),
// r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 split in two for exactness), p the degree-6
// Taylor polynomial of e^r (relative error < 2e-7 there, about float32 rounding).
// Below -87 the result underflows to 0 like expf.
__m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

void softmax(float* row, std::int64_t n) {
  __m512 top = _mm512_set1_ps(-3.0e38f);
  for (std::int64_t t = 0; t < n; t += 16) {
    const __mmask16 mask = n - t >= 16 ? 0xFFFF : tail_mask(n - t);
    top = _mm512_mask_max_ps(top, mask, top, _mm512_maskz_loadu_ps(mask, row + t));
  }
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(top));
  __m512 sum = _mm512_setzero_ps();
  for (std::int64_t t = 0; t < n; t += 16) {
    const __mmask16 mask = n - t >= 16 ? 0xFFFF : tail_mask(n - t);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + t), max));
    _mm512_mask_storeu_ps(row + t, mask, e);
    sum = _mm512_mask_add_ps(sum, mask, sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (std::int64_t t = 0; t < n; t += 16) {
    const __mmask16 mask = n - t >= 16 ? 0xFFFF : tail_mask(n - t);
    _mm512_mask_storeu_ps(row + t, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, row + t), inv));
  }
}

void to_half(const float* x, std::uint16_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? 0xFFFF : tail_mask(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mask, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_mask_storeu_epi16(y + i, mask, h);
  }
}

}  // namespace

const KvAttentionIsa kKvAttentionAvx512{scores, accumulate, softmax, to_half};

}  // namespace q3vl::kernels
