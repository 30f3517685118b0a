// The AVX-512 VNNI path (built with per-file ISA flags; dispatch.cpp calls it only when
// CPUID says the CPU has it).
//
// One 64-byte weight group holds 16 rows x 4 k as unsigned bytes (4-bit: twice, in the
// two nibbles; 5/6-bit: the nibbles plus bits from a high-bit plane; nl4: the nibbles
// looked up in a 16-byte table by vpshufb), so vpdpbusd(acc, group, broadcast 4 int8 activations) adds 4 products
// to each row's int32 lane: 16 rows advance together with no horizontal sums. GEMM
// keeps MR activation rows (up to 8) in registers and unpacks each group once for all of
// them; decode (M = 1) is the same loop with MR = 1, bound by memory bandwidth.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/simd_float.h"
#include "kernels/weight_grid.h"

namespace q3vl::kernels {
namespace {

constexpr int kMaxRows = 8;

inline __m512i broadcast4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm512_set1_epi32(v);
}

// Horizontal sum by folding halves (GCC 12's _mm512_reduce_* trip -Wmaybe-uninitialized).
inline std::int32_t horizontal_sum(__m512i v) {
  v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0x4E));
  v = _mm512_add_epi32(v, _mm512_shuffle_i32x4(v, v, 0xB1));
  __m128i x = _mm512_castsi512_si128(v);
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
  x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
  return _mm_cvtsi128_si32(x);
}

// dispatch.h's TileOutput for one activation row: `acc` holds the tile's 16 outputs.
inline void store_row(const TileOutput& out, __m512 acc, std::int64_t tile, std::int64_t m) {
  float* dst = out.y + m * out.width;
  if (out.kind == TileOutput::Kind::linear) {
    const std::int64_t rows = std::min(kTileRows, out.width - tile * kTileRows);
    const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1u);
    if (out.bias) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask, out.bias + tile * kTileRows));
    _mm512_mask_storeu_ps(dst + tile * kTileRows, mask, acc);
    return;
  }
  // Lanes 0..7 are the gates, lanes 8..15 the matching ups (quant_linear.h).
  const __m256 g = _mm512_castps512_ps256(acc), u = _mm512_extractf32x8_ps(acc, 1);
  const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
  const std::int64_t pairs = std::min(kSwiGLUPairs, out.width - tile * kSwiGLUPairs);
  _mm256_mask_storeu_ps(dst + tile * kSwiGLUPairs, static_cast<__mmask8>((1u << pairs) - 1u), _mm256_mul_ps(silu, u));
}

template <int Shift>
inline __m512i shift16(__m512i v) {
  if constexpr (Shift > 0) return _mm512_slli_epi16(v, Shift);
  if constexpr (Shift < 0) return _mm512_srli_epi16(v, -Shift);
  return v;
}

constexpr int bits_of(WeightFormat f) {
  return f == WeightFormat::int5 ? 5 : f == WeightFormat::int6 ? 6 : f == WeightFormat::int8 ? 8 : 4;
}

// The zero point when there are no zero points: 2^(bits-1), or nl's 128 (quant_linear.h).
constexpr std::int32_t symmetric_zero(WeightFormat f) { return f == WeightFormat::nl4 ? 128 : 1 << (bits_of(f) - 1); }

// What one sub-block's weight vectors need besides their groups: the high-bit planes
// (5-, 6-bit) or the grid lookup table (nl4).
struct SubBlockExtras {
  __m512i planes[2];
  __m512i grid;  // kNl4Grid[q] + 128 as unsigned bytes, in each 128-bit lane
};

// Nibble vector I of a sub-block (quant_linear.h) as the unsigned bytes u the math multiplies.
template <WeightFormat F, int I>
inline __m512i weight_vector(const std::uint8_t* sub, const SubBlockExtras& extras) {
  const __m512i v = _mm512_loadu_si512(sub + I / 2 * kGroupBytes);
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i nibble = I % 2 == 0 ? _mm512_and_si512(v, low) : _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
  // 0xF8: A | (B & C), here nibble | (shifted plane & the high-bit mask).
  if constexpr (F == WeightFormat::int5) {
    return _mm512_ternarylogic_epi32(nibble, shift16<4 - I>(extras.planes[0]), _mm512_set1_epi8(0x10), 0xF8);
  } else if constexpr (F == WeightFormat::int6) {
    return _mm512_ternarylogic_epi32(nibble, shift16<4 - 2 * (I % 4)>(extras.planes[I / 4]), _mm512_set1_epi8(0x30),
                                     0xF8);
  } else if constexpr (F == WeightFormat::nl4) {
    return _mm512_shuffle_epi8(extras.grid, nibble);
  } else {
    return nibble;
  }
}

// acc[i] += the 32-k dot products of one sub-block for activation row i, 16 tile rows at once.
template <WeightFormat F, int MR, int... I>
inline void sub_block_dots(const std::uint8_t* sub, const SubBlockExtras& extras, const std::int8_t* const* act,
                           std::int64_t k0, __m512i* acc, std::integer_sequence<int, I...> /*vectors*/) {
  if constexpr (F == WeightFormat::int8) {
    (
        [&] {
          const __m512i v = _mm512_loadu_si512(sub + I * kGroupBytes);
          for (int i = 0; i < MR; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], v, broadcast4(act[i] + k0 + I * 4));
        }(),
        ...);
  } else {
    (
        [&] {
          const __m512i u = weight_vector<F, I>(sub, extras);
          for (int i = 0; i < MR; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], u, broadcast4(act[i] + k0 + I * 4));
        }(),
        ...);
  }
}

template <WeightFormat F, int MR>
// prefetch: whether to ask for the weights ahead (dispatch.h). Only the first row group of
// a tile streams them from memory; later groups find them in cache.
void tile_block_rows(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile, std::int64_t m0,
                     bool prefetch, const TileOutput& output) {
  constexpr int kBits = bits_of(F);
  const QuantLinearShape& s = w.shape;
  const std::int64_t k_blocks = s.k_blocks(), subs = s.block_size / kActBlock, act_blocks = a.blocks_per_row();
  const std::int64_t tile_bytes = s.tile_block_bytes();
  const std::uintptr_t scales_ahead = side_ahead(kTileRows * 2, tile_bytes), zeros_ahead = side_ahead(kTileRows, tile_bytes);
  constexpr std::int64_t kSubBytes = kActBlock * kBits / 8 * kTileRows;  // 32 k of 16 rows
  const std::int8_t* act[MR];
  const float* d[MR];
  const std::int32_t* sums[MR];
  __m512 out[MR];
  for (int i = 0; i < MR; ++i) {
    act[i] = a.values.data() + (m0 + i) * a.k_padded;
    d[i] = a.scales.data() + (m0 + i) * act_blocks;
    sums[i] = a.sums.data() + (m0 + i) * act_blocks;
    out[i] = _mm512_setzero_ps();
  }
  SubBlockExtras extras{};
  if constexpr (F == WeightFormat::nl4) {
    // Replicated in memory rather than by vbroadcasti32x4 (GCC 12's intrinsic trips -Wuninitialized).
    std::uint8_t table[64];
    for (int q = 0; q < 64; ++q) table[q] = static_cast<std::uint8_t>(kNl4Grid[static_cast<std::size_t>(q % 16)] + 128);
    extras.grid = _mm512_loadu_si512(table);
  }
  constexpr int kVectors = 8;  // per 32 k: 8 groups (8-bit) or 8 nibble vectors
  for (std::int64_t b = 0; b < k_blocks; ++b) {
    const std::int64_t tb = tile * k_blocks + b;
    const std::uint8_t* blob = w.weight + tb * tile_bytes;
    if (prefetch) {
      prefetch_ahead(blob, tile_bytes);
      prefetch_side(w.scales + tb * kTileRows, scales_ahead);
      if (w.zero_points) prefetch_side(w.zero_points + tb * kTileRows, zeros_ahead);
    }
    const __m512 scale = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.scales + tb * kTileRows)));
    const __m512i zero = w.zero_points ? _mm512_cvtepu8_epi32(_mm_loadu_si128(
                                             reinterpret_cast<const __m128i*>(w.zero_points + tb * kTileRows)))
                                       : _mm512_set1_epi32(symmetric_zero(F));
    for (std::int64_t sub = 0; sub < subs; ++sub) {
      const std::int64_t j = b * subs + sub;
      const std::int64_t k0 = j * kActBlock;
      const std::uint8_t* groups = blob + sub * kSubBytes;
      if constexpr (kBits == 5 || kBits == 6) {
        for (int c = 0; c < kBits - 4; ++c) extras.planes[c] = _mm512_loadu_si512(groups + (4 + c) * kGroupBytes);
      }
      __m512i acc[MR];
      for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_si512();
      sub_block_dots<F, MR>(groups, extras, act, k0, acc, std::make_integer_sequence<int, kVectors>{});
      for (int i = 0; i < MR; ++i) {
        const __m512i correction = w.zero_points ? _mm512_mullo_epi32(zero, _mm512_set1_epi32(sums[i][j]))
                                                 : _mm512_set1_epi32(symmetric_zero(F) * sums[i][j]);
        const __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i], correction));
        out[i] = _mm512_fmadd_ps(dot, _mm512_mul_ps(scale, _mm512_set1_ps(d[i][j])), out[i]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) store_row(output, out[i], tile, m0 + i);
}

template <WeightFormat F>
void tile_rows_format(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile,
                      std::int64_t m_begin, std::int64_t m_end, const TileOutput& out) {
  std::int64_t m = m_begin;
  for (; m + kMaxRows <= m_end; m += kMaxRows) tile_block_rows<F, kMaxRows>(w, a, tile, m, m == m_begin, out);
  switch (m_end - m) {
    case 7: tile_block_rows<F, 7>(w, a, tile, m, m == m_begin, out); break;
    case 6: tile_block_rows<F, 6>(w, a, tile, m, m == m_begin, out); break;
    case 5: tile_block_rows<F, 5>(w, a, tile, m, m == m_begin, out); break;
    case 4: tile_block_rows<F, 4>(w, a, tile, m, m == m_begin, out); break;
    case 3: tile_block_rows<F, 3>(w, a, tile, m, m == m_begin, out); break;
    case 2: tile_block_rows<F, 2>(w, a, tile, m, m == m_begin, out); break;
    case 1: tile_block_rows<F, 1>(w, a, tile, m, m == m_begin, out); break;
    default: break;
  }
}

void tile_rows(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile, std::int64_t m_begin,
               std::int64_t m_end, const TileOutput& out) {
  switch (w.shape.format()) {
    case WeightFormat::int4: tile_rows_format<WeightFormat::int4>(w, a, tile, m_begin, m_end, out); break;
    case WeightFormat::int5: tile_rows_format<WeightFormat::int5>(w, a, tile, m_begin, m_end, out); break;
    case WeightFormat::int6: tile_rows_format<WeightFormat::int6>(w, a, tile, m_begin, m_end, out); break;
    case WeightFormat::int8: tile_rows_format<WeightFormat::int8>(w, a, tile, m_begin, m_end, out); break;
    case WeightFormat::nl4: tile_rows_format<WeightFormat::nl4>(w, a, tile, m_begin, m_end, out); break;
  }
}

// activation_quant.h's contract, 16 lanes at a time: the same float operations as the
// scalar version (max of |x|, x * (127 / amax), round half to even), so the same codes.
void quantize_rows(const float* x, std::int64_t k, std::int64_t row_begin, std::int64_t row_end,
                   QuantizedActivations& out) {
  const std::int64_t blocks = out.blocks_per_row();
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const float* row = x + r * k;
    std::int8_t* codes = out.values.data() + r * out.k_padded;
    for (std::int64_t j = 0; j < blocks; ++j) {
      const std::int64_t begin = j * kActBlock;
      const std::int64_t left = std::clamp<std::int64_t>(k - begin, 0, kActBlock);
      const __mmask16 m0 = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1u);
      const __mmask16 m1 = static_cast<__mmask16>(left >= 32 ? 0xFFFF : left <= 16 ? 0 : (1u << (left - 16)) - 1u);
      const __m512 v0 = _mm512_maskz_loadu_ps(m0, row + begin);
      const __m512 v1 = _mm512_maskz_loadu_ps(m1, row + begin + 16);
      const float amax = Float16::max_lane(_mm512_max_ps(_mm512_and_ps(v0, sign_off), _mm512_and_ps(v1, sign_off)));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      const __m512 scale = _mm512_set1_ps(inv);
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, scale));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, scale));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + begin), _mm512_cvtsepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + begin + 16), _mm512_cvtsepi32_epi8(q1));
      out.scales[static_cast<std::size_t>(r * blocks + j)] = amax / 127.0f;
      out.sums[static_cast<std::size_t>(r * blocks + j)] = horizontal_sum(_mm512_add_epi32(q0, q1));
    }
  }
}

}  // namespace

const IsaKernels kAvx512VnniKernels{quantize_rows, tile_rows};

}  // namespace q3vl::kernels
