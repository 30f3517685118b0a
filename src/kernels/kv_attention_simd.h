// kv_attention.h's row primitives written once over a vector type V, for the SIMD files
// (kv_attention_avx512.cpp: 16 lanes, kv_attention_avx2.cpp: 8), and over the cached
// row's form (HalfRow, Int8Row). A cached row becomes float32 in registers, never in
// memory; head_dim need not be a multiple of the width (the last chunk of a row has fewer
// lanes, V's loads and stores mask them).
//
// V provides: Reg, kWidth, kChunksPerPass (row chunks whose sums fit the registers
// beside kQueryGroup queries), Mask and mask(lanes) (which of a chunk's lanes are in the
// row, made once per chunk, not per load), zero(), set1(f), fmadd(a, b, c), sub, mul, max,
// add, load(float*, m) (lanes outside m read 0), load_fill(float*, m, f) (read f),
// store(float*, m, v), load_half(uint16*, m), store_half(uint16*, m, v), load_int8(int8*, m)
// (the codes as floats), half_to_float(uint16 bits), keep(v, m)
// (lanes outside m set to 0), sum(v), max_lane(v), exp_nonpositive(v), and
// store_scores<MQ>(acc, scale, out, stride): out[i * stride] = scale * sum(acc[i]).
//
// Internal linkage on purpose: each ISA file instantiates these with its own -m flags.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "kernels/dispatch.h"
#include "kernels/kv_attention.h"

namespace q3vl::kernels {
namespace {

// The lane mask of each chunk of a head_dim row: all V::kWidth lanes but in the last chunk.
template <class V>
struct RowChunks {
  std::int64_t count;
  typename V::Mask full, last;
  explicit RowChunks(std::int64_t head_dim)
      : count((head_dim + V::kWidth - 1) / V::kWidth),
        full(V::mask(V::kWidth)),
        last(V::mask(static_cast<int>(head_dim - V::kWidth * (count - 1)))) {}
  const typename V::Mask& mask(std::int64_t c) const { return c + 1 == count ? last : full; }
};

// The mask of elements [t, n) of a row walked kWidth at a time.
template <class V>
typename V::Mask rest_mask(std::int64_t n, std::int64_t t) {
  return V::mask(static_cast<int>(std::min<std::int64_t>(V::kWidth, n - t)));
}

// Chunk c of a cached row as V::kWidth floats (lanes outside m read 0), one struct per
// row form of kv_attention.h.
template <class V>
struct HalfRow {
  static constexpr KvCacheType kType = KvCacheType::float16;
  static typename V::Reg load(const std::uint8_t* row, std::int64_t /*head_dim*/, std::int64_t c,
                              const typename V::Mask& m) {
    return V::load_half(reinterpret_cast<const std::uint16_t*>(row) + V::kWidth * c, m);
  }
};

// A chunk never straddles two 32-value blocks (kWidth divides 32), so it takes one scale.
template <class V>
struct Int8Row {
  static_assert(kKvInt8Block % V::kWidth == 0);
  static constexpr KvCacheType kType = KvCacheType::int8;
  static typename V::Reg load(const std::uint8_t* row, std::int64_t head_dim, std::int64_t c,
                              const typename V::Mask& m) {
    std::uint16_t scale;
    std::memcpy(&scale, row + head_dim + 2 * (V::kWidth * c / kKvInt8Block), sizeof scale);
    const auto codes = V::load_int8(reinterpret_cast<const std::int8_t*>(row) + V::kWidth * c, m);
    return V::mul(codes, V::set1(V::half_to_float(scale)));
  }
};

// scores for MQ (1..kQueryGroup) consecutive queries: each key chunk is converted once
// and used by all MQ queries.
template <class V, class R, int MQ>
void scores_rows(const float* q, const std::uint8_t* keys, std::int64_t count_t, std::int64_t head_dim,
                 const RowChunks<V>& chunks, float scale, float* out, std::int64_t stride) {
  const std::int64_t row_bytes = kv_row_bytes(R::kType, head_dim);
  for (std::int64_t t = 0; t < count_t; ++t) {
    const std::uint8_t* k = keys + t * row_bytes;
    prefetch_ahead(k, row_bytes);
    typename V::Reg acc[MQ];
    for (int i = 0; i < MQ; ++i) acc[i] = V::zero();
    for (std::int64_t c = 0; c < chunks.count; ++c) {
      const auto& m = chunks.mask(c);
      const auto row = R::load(k, head_dim, c, m);
      for (int i = 0; i < MQ; ++i) acc[i] = V::fmadd(V::load(q + i * head_dim + V::kWidth * c, m), row, acc[i]);
    }
    V::template store_scores<MQ>(acc, scale, out + t, stride);
  }
}

template <class V, class R>
void scores(const float* q, std::int64_t count_q, const std::uint8_t* keys, std::int64_t count_t,
            std::int64_t head_dim, float scale, float* out, std::int64_t stride) {
  using Rows = void (*)(const float*, const std::uint8_t*, std::int64_t, std::int64_t, const RowChunks<V>&, float,
                        float*, std::int64_t);
  static constexpr Rows kRows[] = {nullptr, scores_rows<V, R, 1>, scores_rows<V, R, 2>, scores_rows<V, R, 3>,
                                   scores_rows<V, R, 4>};
  static_assert(std::size(kRows) == kQueryGroup + 1);
  kRows[count_q](q, keys, count_t, head_dim, RowChunks<V>(head_dim), scale, out, stride);
}

// out[m] += sum_t w[m, t] V[t] for MQ queries and NC chunks from chunk c0: the MQ x NC
// partial outputs stay in registers across all t (each value chunk converted once per
// query group) and are read and written once.
template <class V, class R, int MQ, int NC>
void accumulate_block(const float* w, std::int64_t stride, const std::uint8_t* values, std::int64_t count_t,
                      std::int64_t head_dim, const RowChunks<V>& chunks, std::int64_t c0, float* out) {
  const std::int64_t row_bytes = kv_row_bytes(R::kType, head_dim);
  typename V::Mask masks[NC];
  typename V::Reg acc[MQ][NC];
  for (int j = 0; j < NC; ++j) masks[j] = chunks.mask(c0 + j);
  for (int i = 0; i < MQ; ++i) {
    for (int j = 0; j < NC; ++j) acc[i][j] = V::load(out + i * head_dim + V::kWidth * (c0 + j), masks[j]);
  }
  for (std::int64_t t = 0; t < count_t; ++t) {
    // The first pass over the values streams them from memory (the later ones find them in cache).
    const std::uint8_t* value = values + t * row_bytes;
    if (c0 == 0) prefetch_ahead(value, row_bytes);
    typename V::Reg row[NC];
    for (int j = 0; j < NC; ++j) row[j] = R::load(value, head_dim, c0 + j, masks[j]);
    for (int i = 0; i < MQ; ++i) {
      const auto wt = V::set1(w[i * stride + t]);
      for (int j = 0; j < NC; ++j) acc[i][j] = V::fmadd(wt, row[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MQ; ++i) {
    for (int j = 0; j < NC; ++j) V::store(out + i * head_dim + V::kWidth * (c0 + j), masks[j], acc[i][j]);
  }
}

// Chunks [c, count) in blocks of NC, the remainder in smaller blocks.
template <class V, class R, int MQ, int NC>
void accumulate_from(const float* w, std::int64_t stride, const std::uint8_t* values, std::int64_t count_t,
                     std::int64_t head_dim, const RowChunks<V>& chunks, std::int64_t c, float* out) {
  for (; c + NC <= chunks.count; c += NC) {
    accumulate_block<V, R, MQ, NC>(w, stride, values, count_t, head_dim, chunks, c, out);
  }
  if constexpr (NC > 1) {
    if (c < chunks.count) accumulate_from<V, R, MQ, NC - 1>(w, stride, values, count_t, head_dim, chunks, c, out);
  }
}

template <class V, class R, int MQ>
void accumulate_rows(const float* w, std::int64_t stride, const std::uint8_t* values, std::int64_t count_t,
                     std::int64_t head_dim, const RowChunks<V>& chunks, float* out) {
  accumulate_from<V, R, MQ, V::kChunksPerPass>(w, stride, values, count_t, head_dim, chunks, 0, out);
}

template <class V, class R>
void accumulate(const float* w, std::int64_t count_q, std::int64_t stride, const std::uint8_t* values,
                std::int64_t count_t, std::int64_t head_dim, float* out) {
  using Rows = void (*)(const float*, std::int64_t, const std::uint8_t*, std::int64_t, std::int64_t,
                        const RowChunks<V>&, float*);
  static constexpr Rows kRows[] = {nullptr, accumulate_rows<V, R, 1>, accumulate_rows<V, R, 2>,
                                   accumulate_rows<V, R, 3>, accumulate_rows<V, R, 4>};
  static_assert(std::size(kRows) == kQueryGroup + 1);
  kRows[count_q](w, stride, values, count_t, head_dim, RowChunks<V>(head_dim), out);
}

template <class V>
void softmax(float* row, std::int64_t n) {
  auto top = V::set1(-3.0e38f);
  for (std::int64_t t = 0; t < n; t += V::kWidth) top = V::max(top, V::load_fill(row + t, rest_mask<V>(n, t), -3.0e38f));
  const auto shift = V::set1(V::max_lane(top));
  auto sum = V::zero();
  for (std::int64_t t = 0; t < n; t += V::kWidth) {
    const auto m = rest_mask<V>(n, t);
    const auto e = V::exp_nonpositive(V::sub(V::load(row + t, m), shift));
    V::store(row + t, m, e);
    sum = V::add(sum, V::keep(e, m));
  }
  const auto inv = V::set1(1.0f / V::sum(sum));
  for (std::int64_t t = 0; t < n; t += V::kWidth) {
    const auto m = rest_mask<V>(n, t);
    V::store(row + t, m, V::mul(V::load(row + t, m), inv));
  }
}

template <class V>
void to_half(const float* x, std::uint16_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; i += V::kWidth) {
    const auto m = rest_mask<V>(n, i);
    V::store_half(y + i, m, V::load(x + i, m));
  }
}

template <class V>
constexpr KvAttentionIsa kv_attention_isa() {
  return KvAttentionIsa{{scores<V, HalfRow<V>>, accumulate<V, HalfRow<V>>},
                        {scores<V, Int8Row<V>>, accumulate<V, Int8Row<V>>},
                        softmax<V>,
                        to_half<V>};
}

}  // namespace
}  // namespace q3vl::kernels
