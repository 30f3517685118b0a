// kv_attention.h's row primitives with AVX2, FMA and F16C: the AVX-512 file's loops
// (kv_attention_avx512.cpp) on 8 lanes. A cached float16 row becomes float32 in
// registers; head_dim need not be a multiple of 8 (the last chunk of a row is masked, its
// halves read through a zeroed copy since AVX2 has no masked 16-bit load).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/kv_attention.h"
#include "kernels/simd_exp.h"

namespace q3vl::kernels {
namespace {

// Lanes of each 8-wide chunk of a head_dim row: 8 but in the last chunk.
struct RowChunks {
  std::int64_t count;
  int last;
  explicit RowChunks(std::int64_t head_dim)
      : count((head_dim + 7) / 8), last(static_cast<int>(head_dim - 8 * ((head_dim + 7) / 8 - 1))) {}
  int lanes(std::int64_t c) const { return c + 1 == count ? last : 8; }
};

__m256i lane_mask(int lanes) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

__m256 load_half(const std::uint16_t* p, int lanes) {
  if (lanes == 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  alignas(16) std::uint16_t part[8] = {};
  std::memcpy(part, p, static_cast<std::size_t>(lanes) * sizeof(std::uint16_t));
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(part)));
}

__m256 load_float(const float* p, int lanes) {
  return lanes == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask(lanes));
}

void store_float(float* p, int lanes, __m256 v) {
  if (lanes == 8) {
    _mm256_storeu_ps(p, v);
  } else {
    _mm256_maskstore_ps(p, lane_mask(lanes), v);
  }
}

float lane_sum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

float lane_max(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// scores for MQ (1..4) consecutive queries: each key chunk is converted once for all MQ.
template <int MQ>
void scores_rows(const float* q, const std::uint16_t* keys, std::int64_t count_t, std::int64_t head_dim,
                 const RowChunks& chunks, float scale, float* out, std::int64_t stride) {
  for (std::int64_t t = 0; t < count_t; ++t) {
    const std::uint16_t* k = keys + t * head_dim;
    prefetch_ahead(reinterpret_cast<const std::uint8_t*>(k), head_dim * 2);
    __m256 acc[MQ];
    for (int i = 0; i < MQ; ++i) acc[i] = _mm256_setzero_ps();
    for (std::int64_t c = 0; c < chunks.count; ++c) {
      const int lanes = chunks.lanes(c);
      const __m256 row = load_half(k + 8 * c, lanes);
      for (int i = 0; i < MQ; ++i) acc[i] = _mm256_fmadd_ps(load_float(q + i * head_dim + 8 * c, lanes), row, acc[i]);
    }
    for (int i = 0; i < MQ; ++i) out[i * stride + t] = scale * lane_sum(acc[i]);
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

// out[m] += sum_t w[m, t] V[t] for MQ (1..4) queries and NC (1..2) chunks from chunk c0,
// the MQ x NC partial outputs in registers across all t (16 ymm registers: at most 8
// accumulators, the rows and the weight).
template <int MQ, int NC>
void accumulate_block(const float* w, std::int64_t stride, const std::uint16_t* values, std::int64_t count_t,
                      std::int64_t head_dim, const RowChunks& chunks, std::int64_t c0, float* out) {
  int lanes[NC];
  __m256 acc[MQ][NC];
  for (int j = 0; j < NC; ++j) lanes[j] = chunks.lanes(c0 + j);
  for (int i = 0; i < MQ; ++i) {
    for (int j = 0; j < NC; ++j) acc[i][j] = load_float(out + i * head_dim + 8 * (c0 + j), lanes[j]);
  }
  for (std::int64_t t = 0; t < count_t; ++t) {
    // The first pass over the values streams them from memory (the later ones find them in cache).
    if (c0 == 0) prefetch_ahead(reinterpret_cast<const std::uint8_t*>(values + t * head_dim), head_dim * 2);
    __m256 row[NC];
    for (int j = 0; j < NC; ++j) row[j] = load_half(values + t * head_dim + 8 * (c0 + j), lanes[j]);
    for (int i = 0; i < MQ; ++i) {
      const __m256 wt = _mm256_broadcast_ss(w + i * stride + t);
      for (int j = 0; j < NC; ++j) acc[i][j] = _mm256_fmadd_ps(wt, row[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MQ; ++i) {
    for (int j = 0; j < NC; ++j) store_float(out + i * head_dim + 8 * (c0 + j), lanes[j], acc[i][j]);
  }
}

template <int MQ>
void accumulate_rows(const float* w, std::int64_t stride, const std::uint16_t* values, std::int64_t count_t,
                     std::int64_t head_dim, const RowChunks& chunks, float* out) {
  std::int64_t c = 0;
  for (; c + 2 <= chunks.count; c += 2) accumulate_block<MQ, 2>(w, stride, values, count_t, head_dim, chunks, c, out);
  if (c < chunks.count) accumulate_block<MQ, 1>(w, stride, values, count_t, head_dim, chunks, c, out);
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

void softmax(float* row, std::int64_t n) {
  __m256 top = _mm256_set1_ps(-3.0e38f);
  std::int64_t t = 0;
  for (; t + 8 <= n; t += 8) top = _mm256_max_ps(top, _mm256_loadu_ps(row + t));
  float max = lane_max(top);
  for (std::int64_t r = t; r < n; ++r) max = std::max(max, row[r]);
  const __m256 shift = _mm256_set1_ps(max);
  __m256 sum = _mm256_setzero_ps();
  for (t = 0; t < n; t += 8) {
    const int lanes = static_cast<int>(std::min<std::int64_t>(8, n - t));
    // Lanes past n load as 0 and are masked out of the sum and the store.
    const __m256 e = exp8(_mm256_sub_ps(load_float(row + t, lanes), shift));
    store_float(row + t, lanes, e);
    sum = _mm256_add_ps(sum, _mm256_and_ps(e, _mm256_castsi256_ps(lane_mask(lanes))));
  }
  const __m256 inv = _mm256_set1_ps(1.0f / lane_sum(sum));
  for (t = 0; t < n; t += 8) {
    const int lanes = static_cast<int>(std::min<std::int64_t>(8, n - t));
    store_float(row + t, lanes, _mm256_mul_ps(load_float(row + t, lanes), inv));
  }
}

void to_half(const float* x, std::uint16_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += 8) {
    const int lanes = static_cast<int>(std::min<std::int64_t>(8, n - i));
    const __m128i h = _mm256_cvtps_ph(load_float(x + i, lanes), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (lanes == 8) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
    } else {
      alignas(16) std::uint16_t part[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(part), h);
      std::memcpy(y + i, part, static_cast<std::size_t>(lanes) * sizeof(std::uint16_t));
    }
  }
}

}  // namespace

const KvAttentionIsa kKvAttentionAvx2{scores, accumulate, softmax, to_half};

}  // namespace q3vl::kernels
