// The AVX2 path of the bf16 kernels (bf16_paths.h; CPUs without AVX512-BF16): the panel
// and the softmax row (simd_float.h's exp8). The panel: the bf16 values widened to float32 (a bf16
// is a float's top half) and multiplied with FMA. A tile's pair vector is two ymm of 8
// rows' (k even, k odd) dwords: shifting a dword left by 16 gives the even k's float,
// masking its low half away the odd k's. Up to 4 activation rows share each widened
// tile (8 accumulators + 4 weights + 2 broadcasts of the 16 ymm registers).
#include <immintrin.h>

#include "kernels/bf16_paths.h"
#include "kernels/bf16_simd.h"
#include "kernels/simd_float.h"

namespace q3vl::kernels {
namespace {

constexpr int kMaxRows = 4;

template <int Rows>
void rows_by_tile(const Bf16Panel& panel, std::int64_t row0, std::int64_t tile) {
  __m256 lo[Rows], hi[Rows];
#pragma GCC unroll 4
  for (int r = 0; r < Rows; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  const __m256i odd_mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  const std::uint16_t* w = panel.w + tile * panel.tile_stride;
  const std::uint16_t* x = panel.x + row0 * panel.x_stride;
  for (std::int64_t p = 0; p < panel.k_pairs; ++p, w += kTileRows * 2, x += 2) {
    const __m256i w_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i w_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + kTileRows));
    const __m256 even_lo = _mm256_castsi256_ps(_mm256_slli_epi32(w_lo, 16));
    const __m256 odd_lo = _mm256_castsi256_ps(_mm256_and_si256(w_lo, odd_mask));
    const __m256 even_hi = _mm256_castsi256_ps(_mm256_slli_epi32(w_hi, 16));
    const __m256 odd_hi = _mm256_castsi256_ps(_mm256_and_si256(w_hi, odd_mask));
#pragma GCC unroll 4
    for (int r = 0; r < Rows; ++r) {
      const std::uint16_t* pair = x + r * panel.x_stride;
      const __m256 a_even = _mm256_set1_ps(from_bf16(pair[0]));
      const __m256 a_odd = _mm256_set1_ps(from_bf16(pair[1]));
      lo[r] = _mm256_fmadd_ps(a_odd, odd_lo, _mm256_fmadd_ps(a_even, even_lo, lo[r]));
      hi[r] = _mm256_fmadd_ps(a_odd, odd_hi, _mm256_fmadd_ps(a_even, even_hi, hi[r]));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < Rows; ++r) {
    float* out = panel.out + (row0 + r) * kBf16PanelWidth + tile * kTileRows;
    _mm256_storeu_ps(out, lo[r]);
    _mm256_storeu_ps(out + 8, hi[r]);
  }
}

void run_panel(const Bf16Panel& panel) {
  for (std::int64_t t = 0; t < panel.tiles; ++t) {
    for (std::int64_t r = 0; r < panel.rows; r += kMaxRows) {
      switch (panel.rows - r) {
        case 1: rows_by_tile<1>(panel, r, t); break;
        case 2: rows_by_tile<2>(panel, r, t); break;
        case 3: rows_by_tile<3>(panel, r, t); break;
        default: rows_by_tile<kMaxRows>(panel, r, t); break;
      }
    }
  }
}

// bf16_simd.h's vector type: simd_float.h's 8 lanes.
struct Avx2 : Float8 {
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  // to_bf16 per lane: round to nearest even, NaNs quieted.
  static void store_bf16(std::uint16_t* out, Reg v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x0040));
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF)),
                                           _mm256_set1_epi32(0x7F800000));
    const __m256i result = _mm256_blendv_epi8(rounded, quiet, nan);
    // packus packs within 128-bit lanes: the low 64 bits of each lane hold the 4 results.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(result, result), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed));
  }
};

}  // namespace

const Bf16Kernels kBf16Avx2Kernels{run_panel, softmax_row<Avx2>, round_row<Avx2>};

}  // namespace q3vl::kernels
