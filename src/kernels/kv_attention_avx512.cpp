// kv_attention.h's row primitives with AVX-512 (F, BW, VL) and F16C: a cached float16
// row becomes float32 in registers (vcvtph2ps), never in memory. head_dim need not be a
// multiple of 16: the last chunk of a row is masked.
#include <immintrin.h>

#include "kernels/dispatch.h"
#include "kernels/kv_attention.h"

namespace q3vl::kernels {
namespace {

__mmask16 tail_mask(std::int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

__m512 load_half(const std::uint16_t* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

// Per-chunk load masks of a head_dim row: all 16 lanes but in the last chunk.
struct RowChunks {
  std::int64_t count;
  __mmask16 last;
  explicit RowChunks(std::int64_t head_dim)
      : count((head_dim + 15) / 16), last(tail_mask(head_dim - 16 * ((head_dim + 15) / 16 - 1))) {}
  __mmask16 mask(std::int64_t c) const { return c + 1 == count ? last : 0xFFFF; }
};

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

// scores for MQ (1..4) consecutive queries: each key chunk is converted once and used by
// all MQ queries; four queries' sums reduce together.
template <int MQ>
void scores_rows(const float* q, const std::uint16_t* keys, std::int64_t count_t, std::int64_t head_dim,
                 const RowChunks& chunks, float scale, float* out, std::int64_t stride) {
  for (std::int64_t t = 0; t < count_t; ++t) {
    const std::uint16_t* k = keys + t * head_dim;
    prefetch_ahead(reinterpret_cast<const std::uint8_t*>(k), head_dim * 2);
    __m512 acc[MQ];
    for (int i = 0; i < MQ; ++i) acc[i] = _mm512_setzero_ps();
    for (std::int64_t c = 0; c < chunks.count; ++c) {
      const __mmask16 mask = chunks.mask(c);
      const __m512 row = load_half(k + 16 * c, mask);
      for (int i = 0; i < MQ; ++i) {
        acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, q + i * head_dim + 16 * c), row, acc[i]);
      }
    }
    if constexpr (MQ == 4) {
      alignas(16) float sums[4];
      _mm_store_ps(sums, _mm_mul_ps(sum4(acc[0], acc[1], acc[2], acc[3]), _mm_set1_ps(scale)));
      for (int i = 0; i < 4; ++i) out[i * stride + t] = sums[i];
    } else {
      for (int i = 0; i < MQ; ++i) out[i * stride + t] = scale * _mm512_reduce_add_ps(acc[i]);
    }
  }
}

void scores(const float* q, std::int64_t count_q, const std::uint16_t* keys, std::int64_t count_t,
            std::int64_t head_dim, float scale, float* out, std::int64_t stride) {
  const RowChunks chunks(head_dim);
  std::int64_t m = 0;
  for (; m + 4 <= count_q; m += 4) scores_rows<4>(q + m * head_dim, keys, count_t, head_dim, chunks, scale, out + m * stride, stride);
  const float* qm = q + m * head_dim;
  float* om = out + m * stride;
  switch (count_q - m) {
    case 3: scores_rows<3>(qm, keys, count_t, head_dim, chunks, scale, om, stride); break;
    case 2: scores_rows<2>(qm, keys, count_t, head_dim, chunks, scale, om, stride); break;
    case 1: scores_rows<1>(qm, keys, count_t, head_dim, chunks, scale, om, stride); break;
    default: break;
  }
}

// out[m] += sum_t w[m, t] V[t] for MQ (1..4) queries and NC (1..4) chunks of the row from
// chunk c0: the MQ x NC partial outputs stay in registers across all t (each value chunk
// converted once per query group), and are read and written once.
template <int MQ, int NC>
void accumulate_block(const float* w, std::int64_t stride, const std::uint16_t* values, std::int64_t count_t,
                      std::int64_t head_dim, const RowChunks& chunks, std::int64_t c0, float* out) {
  __mmask16 masks[NC];
  __m512 acc[MQ][NC];
  for (int j = 0; j < NC; ++j) masks[j] = chunks.mask(c0 + j);
  for (int i = 0; i < MQ; ++i) {
    for (int j = 0; j < NC; ++j) acc[i][j] = _mm512_maskz_loadu_ps(masks[j], out + i * head_dim + 16 * (c0 + j));
  }
  for (std::int64_t t = 0; t < count_t; ++t) {
    // The first pass over the values streams them from memory (the later ones find them in L2).
    if (c0 == 0) prefetch_ahead(reinterpret_cast<const std::uint8_t*>(values + t * head_dim), head_dim * 2);
    __m512 row[NC];
    for (int j = 0; j < NC; ++j) row[j] = load_half(values + t * head_dim + 16 * (c0 + j), masks[j]);
    for (int i = 0; i < MQ; ++i) {
      const __m512 wt = _mm512_set1_ps(w[i * stride + t]);
      for (int j = 0; j < NC; ++j) acc[i][j] = _mm512_fmadd_ps(wt, row[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MQ; ++i) {
    for (int j = 0; j < NC; ++j) _mm512_mask_storeu_ps(out + i * head_dim + 16 * (c0 + j), masks[j], acc[i][j]);
  }
}

template <int MQ>
void accumulate_rows(const float* w, std::int64_t stride, const std::uint16_t* values, std::int64_t count_t,
                     std::int64_t head_dim, const RowChunks& chunks, float* out) {
  std::int64_t c = 0;
  for (; c + 4 <= chunks.count; c += 4) accumulate_block<MQ, 4>(w, stride, values, count_t, head_dim, chunks, c, out);
  switch (chunks.count - c) {
    case 3: accumulate_block<MQ, 3>(w, stride, values, count_t, head_dim, chunks, c, out); break;
    case 2: accumulate_block<MQ, 2>(w, stride, values, count_t, head_dim, chunks, c, out); break;
    case 1: accumulate_block<MQ, 1>(w, stride, values, count_t, head_dim, chunks, c, out); break;
    default: break;
  }
}

void accumulate(const float* w, std::int64_t count_q, std::int64_t stride, const std::uint16_t* values,
                std::int64_t count_t, std::int64_t head_dim, float* out) {
  const RowChunks chunks(head_dim);
  std::int64_t m = 0;
  for (; m + 4 <= count_q; m += 4) {
    accumulate_rows<4>(w + m * stride, stride, values, count_t, head_dim, chunks, out + m * head_dim);
  }
  const float* wm = w + m * stride;
  float* om = out + m * head_dim;
  switch (count_q - m) {
    case 3: accumulate_rows<3>(wm, stride, values, count_t, head_dim, chunks, om); break;
    case 2: accumulate_rows<2>(wm, stride, values, count_t, head_dim, chunks, om); break;
    case 1: accumulate_rows<1>(wm, stride, values, count_t, head_dim, chunks, om); break;
    default: break;
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
