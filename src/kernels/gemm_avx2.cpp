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
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/dispatch.h"

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

template <int Bits, int MR>
void tile_block_rows(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile, std::int64_t m0,
                     const TileOutput& output) {
  const QuantLinearShape& s = w.shape;
  const std::int64_t k_blocks = s.k_blocks(), subs = s.block_size / kActBlock, act_blocks = a.blocks_per_row();
  const std::int64_t tile_bytes = s.tile_block_bytes();
  constexpr std::int64_t kSubBytes = kActBlock * Bits / 8 * kTileRows;
  // Bits == 8 works on q - 128; the zero-point term then uses (128 - z) with a plus sign.
  constexpr std::int32_t kRecentre = Bits == 8 ? 128 : 0;
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
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (std::int64_t b = 0; b < k_blocks; ++b) {
    const std::int64_t tb = tile * k_blocks + b;
    const std::uint8_t* blob = w.weight + tb * tile_bytes;
    __m256 scale[2];
    __m256i zero[2];
    for (int h = 0; h < 2; ++h) {
      scale[h] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales + tb * kTileRows + h * 8)));
      zero[h] = w.zero_points ? _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(
                                    w.zero_points + tb * kTileRows + h * 8)))
                              : _mm256_set1_epi32(1 << (Bits - 1));
      zero[h] = _mm256_sub_epi32(zero[h], _mm256_set1_epi32(kRecentre));
    }
    for (std::int64_t sub = 0; sub < subs; ++sub) {
      const std::int64_t j = b * subs + sub;
      const std::int64_t k0 = j * kActBlock;
      const std::uint8_t* groups = blob + sub * kSubBytes;
      __m256i acc[MR][2];
      for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        if constexpr (Bits == 4) {
          for (int g = 0; g < 4; ++g) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(groups + g * kGroupBytes + h * 32));
            const __m256i lo = _mm256_and_si256(v, low);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            for (int i = 0; i < MR; ++i) {
              acc[i][h] = _mm256_add_epi32(acc[i][h], dot4(lo, broadcast4(act[i] + k0 + g * 8)));
              acc[i][h] = _mm256_add_epi32(acc[i][h], dot4(hi, broadcast4(act[i] + k0 + g * 8 + 4)));
            }
          }
        } else {
          for (int g = 0; g < 8; ++g) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(groups + g * kGroupBytes + h * 32));
            const __m256i centred = _mm256_xor_si256(v, flip);  // q - 128 as a signed byte
            const __m256i magnitude = _mm256_abs_epi8(centred);  // |q - 128| <= 128: fits a u8
            for (int i = 0; i < MR; ++i) {
              const __m256i av = broadcast4(act[i] + k0 + g * 4);
              acc[i][h] = _mm256_add_epi32(acc[i][h], dot4(magnitude, _mm256_sign_epi8(av, centred)));
            }
          }
        }
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

template <int Bits>
void tile_rows_bits(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile, std::int64_t m_begin,
                    std::int64_t m_end, const TileOutput& out) {
  std::int64_t m = m_begin;
  for (; m + kMaxRows <= m_end; m += kMaxRows) tile_block_rows<Bits, kMaxRows>(w, a, tile, m, out);
  if (m < m_end) tile_block_rows<Bits, 1>(w, a, tile, m, out);
}

void tile_rows(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile, std::int64_t m_begin,
               std::int64_t m_end, const TileOutput& out) {
  if (w.shape.bits == 4) {
    tile_rows_bits<4>(w, a, tile, m_begin, m_end, out);
  } else {
    tile_rows_bits<8>(w, a, tile, m_begin, m_end, out);
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
