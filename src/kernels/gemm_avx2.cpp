// The AVX2 path (per-file ISA flags; dispatch.cpp calls it only when CPUID has AVX2,
// FMA and F16C). Same layout as the VNNI path, read as two 8-row halves per 64-byte
// group. Without vpdpbusd the products go through vpmaddubsw (u8 x s8 -> pairwise s16
// sums, saturating) and vpmaddwd (-> s32):
//   4-bit: codes <= 15, |a| <= 127: a pair sums to at most 3810, never saturates.
//   8-bit: codes up to 255 could saturate, so the weights are recentred to q - 128
//          (a signed byte) and its sign moved onto the activation: |q - 128| (<= 128, an
//          unsigned byte) x sign(a, q - 128) (|a| <= 127, never -128, so negating is
//          exact) is the same product with |pair| <= 2·128·127 = 32512 < 32767. (The
//          other way round, sign(q - 128, a), breaks on q = 0: -(-128) wraps.) The recentring is
//          undone exactly in the zero-point term: Σ q·a − z·S = Σ (q−128)·a + (128 − z)·S.
//   nl4:   u = grid + 128 would saturate the same way, so it takes the 8-bit route with
//          c = u - 128 = the grid value itself (vpshufb from a 16-byte table), z = 128.
//   5/6-bit: codes <= 63: a pair sums to at most 16002, never saturates (the 4-bit route).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/weight_grid.h"

namespace q3vl::kernels {
namespace {

constexpr int kMaxRows = 2;

inline __m256i broadcast4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

// Σ over 4 bytes per dword lane of u8 x s8.
inline __m256i dot4(__m256i u8, __m256i s8) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u8, s8), _mm256_set1_epi16(1));
}

template <int Shift>
inline __m256i shift16(__m256i v) {
  if constexpr (Shift > 0) return _mm256_slli_epi16(v, Shift);
  if constexpr (Shift < 0) return _mm256_srli_epi16(v, -Shift);
  return v;
}

constexpr int bits_of(WeightFormat f) {
  return f == WeightFormat::int5 ? 5 : f == WeightFormat::int6 ? 6 : f == WeightFormat::int8 ? 8 : 4;
}

// int8 and nl4 go through signed weights c (q - 128, or the grid value) and the |c| x
// sign(a, c) product; the others multiply their unsigned codes directly.
constexpr bool signed_weights(WeightFormat f) { return f == WeightFormat::int8 || f == WeightFormat::nl4; }

// Per 32-byte half of a sub-block: the high-bit planes (5-, 6-bit) or the grid (nl4).
struct SubBlockExtras {
  __m256i planes[2];
  __m256i grid;  // kNl4Grid as signed bytes, in each 128-bit lane
};

// Vector I of a sub-block's half (quant_linear.h): 8 rows x 4 k as unsigned codes, or as
// signed weights c for signed_weights(F).
template <WeightFormat F, int I>
inline __m256i weight_vector(const std::uint8_t* half, const SubBlockExtras& extras) {
  if constexpr (F == WeightFormat::int8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + I * kGroupBytes));
    return _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80)));  // q - 128 as a signed byte
  } else {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + I / 2 * kGroupBytes));
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i nibble = I % 2 == 0 ? _mm256_and_si256(v, low) : _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    if constexpr (F == WeightFormat::int5) {
      return _mm256_or_si256(nibble, _mm256_and_si256(shift16<4 - I>(extras.planes[0]), _mm256_set1_epi8(0x10)));
    } else if constexpr (F == WeightFormat::int6) {
      return _mm256_or_si256(nibble,
                             _mm256_and_si256(shift16<4 - 2 * (I % 4)>(extras.planes[I / 4]), _mm256_set1_epi8(0x30)));
    } else if constexpr (F == WeightFormat::nl4) {
      return _mm256_shuffle_epi8(extras.grid, nibble);
    } else {
      return nibble;
    }
  }
}

// acc[i] += the 32-k dot products of one sub-block half for activation row i (8 tile rows).
template <WeightFormat F, int MR, int... I>
inline void sub_block_dots(const std::uint8_t* half, const SubBlockExtras& extras, const std::int8_t* const* act,
                           std::int64_t k0, __m256i* acc, std::integer_sequence<int, I...> /*vectors*/) {
  (
      [&] {
        const __m256i v = weight_vector<F, I>(half, extras);
        if constexpr (signed_weights(F)) {
          const __m256i magnitude = _mm256_abs_epi8(v);  // <= 128: fits a u8
          for (int i = 0; i < MR; ++i) {
            acc[i] = _mm256_add_epi32(acc[i], dot4(magnitude, _mm256_sign_epi8(broadcast4(act[i] + k0 + I * 4), v)));
          }
        } else {
          for (int i = 0; i < MR; ++i) acc[i] = _mm256_add_epi32(acc[i], dot4(v, broadcast4(act[i] + k0 + I * 4)));
        }
      }(),
      ...);
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
  constexpr std::int64_t kSubBytes = kActBlock * kBits / 8 * kTileRows;
  // Signed weights are u - 128 (nl: u = grid + 128, z = 128); the zero-point term then
  // uses (z - 128).
  constexpr std::int32_t kRecentre = signed_weights(F) ? 128 : 0;
  constexpr std::int32_t kSymmetricZero = F == WeightFormat::nl4 ? 128 : 1 << (kBits - 1);
  const std::int8_t* act[MR];
  const float* d[MR];
  const std::int32_t* sums[MR];
  __m256 out[MR][2];
  for (int i = 0; i < MR; ++i) {
    act[i] = a.values.data() + (m0 + i) * a.k_padded;
    d[i] = a.scales.data() + (m0 + i) * act_blocks;
    sums[i] = a.sums.data() + (m0 + i) * act_blocks;
    out[i][0] = out[i][1] = _mm256_setzero_ps();
  }
  SubBlockExtras extras{};
  if constexpr (F == WeightFormat::nl4) {
    extras.grid = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kNl4Grid.data())));
  }
  for (std::int64_t b = 0; b < k_blocks; ++b) {
    const std::int64_t tb = tile * k_blocks + b;
    const std::uint8_t* blob = w.weight + tb * tile_bytes;
    if (prefetch) {
      prefetch_ahead(blob, tile_bytes);
      prefetch_side(w.scales + tb * kTileRows, scales_ahead);
      if (w.zero_points) prefetch_side(w.zero_points + tb * kTileRows, zeros_ahead);
    }
    __m256 scale[2];
    __m256i zero[2];
    for (int h = 0; h < 2; ++h) {
      scale[h] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales + tb * kTileRows + h * 8)));
      zero[h] = w.zero_points ? _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(
                                    w.zero_points + tb * kTileRows + h * 8)))
                              : _mm256_set1_epi32(kSymmetricZero);
      zero[h] = _mm256_sub_epi32(zero[h], _mm256_set1_epi32(kRecentre));
    }
    for (std::int64_t sub = 0; sub < subs; ++sub) {
      const std::int64_t j = b * subs + sub;
      const std::int64_t k0 = j * kActBlock;
      const std::uint8_t* groups = blob + sub * kSubBytes;
      __m256i acc[MR][2];
      for (int h = 0; h < 2; ++h) {
        const std::uint8_t* half = groups + h * 32;
        if constexpr (kBits == 5 || kBits == 6) {
          for (int c = 0; c < kBits - 4; ++c) {
            extras.planes[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(half + (4 + c) * kGroupBytes));
          }
        }
        __m256i half_acc[MR];
        for (int i = 0; i < MR; ++i) half_acc[i] = _mm256_setzero_si256();
        sub_block_dots<F, MR>(half, extras, act, k0, half_acc, std::make_integer_sequence<int, 8>{});
        for (int i = 0; i < MR; ++i) acc[i][h] = half_acc[i];
      }
      for (int i = 0; i < MR; ++i) {
        const __m256i sum = _mm256_set1_epi32(sums[i][j]);
        const __m256 dj = _mm256_set1_ps(d[i][j]);
        for (int h = 0; h < 2; ++h) {
          const __m256i dot = _mm256_sub_epi32(acc[i][h], _mm256_mullo_epi32(zero[h], sum));
          out[i][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(scale[h], dj), out[i][h]);
        }
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    float lanes[kTileRows];
    _mm256_storeu_ps(lanes, out[i][0]);
    _mm256_storeu_ps(lanes + 8, out[i][1]);
    store_tile(output, lanes, tile, m0 + i);
  }
}

template <WeightFormat F>
void tile_rows_format(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile,
                      std::int64_t m_begin, std::int64_t m_end, const TileOutput& out) {
  std::int64_t m = m_begin;
  for (; m + kMaxRows <= m_end; m += kMaxRows) tile_block_rows<F, kMaxRows>(w, a, tile, m, m == m_begin, out);
  if (m < m_end) tile_block_rows<F, 1>(w, a, tile, m, m == m_begin, out);
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

// activation_quant.h's contract, 8 lanes at a time, with the scalar version's float
// operations (so the same codes).
void quantize_rows(const float* x, std::int64_t k, std::int64_t row_begin, std::int64_t row_end,
                   QuantizedActivations& out) {
  const std::int64_t blocks = out.blocks_per_row();
  const __m256 sign_off = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const float* row = x + r * k;
    std::int8_t* codes = out.values.data() + r * out.k_padded;
    for (std::int64_t j = 0; j < blocks; ++j) {
      const std::int64_t begin = j * kActBlock;
      const std::int64_t left = std::clamp<std::int64_t>(k - begin, 0, kActBlock);
      float block[kActBlock] = {};
      std::memcpy(block, row + begin, static_cast<std::size_t>(left) * sizeof(float));
      __m256 v[4];
      __m256 amax8 = _mm256_setzero_ps();
      for (int q = 0; q < 4; ++q) {
        v[q] = _mm256_loadu_ps(block + q * 8);
        amax8 = _mm256_max_ps(amax8, _mm256_and_ps(v[q], sign_off));
      }
      float lanes[8];
      _mm256_storeu_ps(lanes, amax8);
      const float amax = *std::max_element(lanes, lanes + 8);
      const __m256 scale = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
      std::int32_t q32[kActBlock];
      __m256i sum = _mm256_setzero_si256();
      for (int q = 0; q < 4; ++q) {
        const __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(v[q], scale));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q32 + q * 8), c);
        sum = _mm256_add_epi32(sum, c);
      }
      for (int i = 0; i < kActBlock; ++i) codes[begin + i] = static_cast<std::int8_t>(q32[i]);
      std::int32_t s8[8];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(s8), sum);
      out.scales[static_cast<std::size_t>(r * blocks + j)] = amax / 127.0f;
      out.sums[static_cast<std::size_t>(r * blocks + j)] = s8[0] + s8[1] + s8[2] + s8[3] + s8[4] + s8[5] + s8[6] + s8[7];
    }
  }
}

}  // namespace

const IsaKernels kAvx2Kernels{quantize_rows, tile_rows};

}  // namespace q3vl::kernels
