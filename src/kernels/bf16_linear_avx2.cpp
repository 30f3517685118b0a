// The AVX2 panel (CPUs without AVX512-BF16): the bf16 values widened to float32 (a bf16
// is a float's top half) and multiplied with FMA. A tile's pair vector is two ymm of 8
// rows' (k even, k odd) dwords: shifting a dword left by 16 gives the even k's float,
// masking its low half away the odd k's. Up to 4 activation rows share each widened
// tile (8 accumulators + 4 weights + 2 broadcasts of the 16 ymm registers).
#include <immintrin.h>

#include "kernels/bf16_linear.h"

namespace q3vl::kernels {
namespace {

constexpr int kMaxRows = 4;

template <int Rows>
void rows_by_tile(const Bf16Panel& panel, std::int64_t row0, std::int64_t tile) {
  __m256 lo[Rows], hi[Rows];
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
    for (int r = 0; r < Rows; ++r) {
      const std::uint16_t* pair = x + r * panel.x_stride;
      const __m256 a_even = _mm256_set1_ps(from_bf16(pair[0]));
      const __m256 a_odd = _mm256_set1_ps(from_bf16(pair[1]));
      lo[r] = _mm256_fmadd_ps(a_odd, odd_lo, _mm256_fmadd_ps(a_even, even_lo, lo[r]));
      hi[r] = _mm256_fmadd_ps(a_odd, odd_hi, _mm256_fmadd_ps(a_even, even_hi, hi[r]));
    }
  }
  for (int r = 0; r < Rows; ++r) {
    float* out = panel.out + (row0 + r) * kBf16PanelTiles * kTileRows + tile * kTileRows;
    _mm256_storeu_ps(out, lo[r]);
    _mm256_storeu_ps(out + 8, hi[r]);
  }
}

}  // namespace

void bf16_panel_avx2(const Bf16Panel& panel) {
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

}  // namespace q3vl::kernels
