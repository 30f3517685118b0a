// The AVX512-BF16 path of the bf16 kernels (bf16_paths.h): the panel and the softmax row.
// The panel: vdpbf16ps multiplies a tile's pair vector (16 rows x 2 k, the
// layout of bf16_linear.h) by one activation row's broadcast pair and adds both products
// to the row's 16 float accumulators. A panel keeps ROWS x TILES accumulators (up to
// 6 x 4 = 24 zmm) and loads TILES weight vectors per pair, so each weight byte loaded
// from L1/L2 feeds ROWS instructions.
#include <immintrin.h>

#include "kernels/bf16_paths.h"
#include "kernels/bf16_simd.h"
#include "kernels/simd_float.h"

namespace q3vl::kernels {
namespace {

// acc += the two products of each dword lane of w (bf16 pairs) with the pair at `pair`,
// broadcast to every lane: vdpbf16ps with an embedded {1to16} broadcast. Written as
// inline assembly because clang 16 crashes (segfault at -O1 and above) on any conversion
// of an integer vector to __m512bh, and the pairs arrive as integer loads.
inline __m512 dot_pairs(__m512 acc, __m512i w, const std::uint16_t* pair) {
  __asm__("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const std::int32_t*>(pair)));
  return acc;
}

template <int Rows, int Tiles>
void panel_kernel(const Bf16Panel& panel) {
  __m512 acc[Rows][Tiles];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < Tiles; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const std::uint16_t* w = panel.w;
  const std::uint16_t* x = panel.x;
  for (std::int64_t p = 0; p < panel.k_pairs; ++p, w += kTileRows * 2, x += 2) {
    __m512i weights[Tiles];
#pragma GCC unroll 8
    for (int t = 0; t < Tiles; ++t) weights[t] = _mm512_loadu_si512(w + t * panel.tile_stride);
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < Tiles; ++t) acc[r][t] = dot_pairs(acc[r][t], weights[t], x + r * panel.x_stride);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < Tiles; ++t) {
      _mm512_store_ps(panel.out + r * kBf16PanelWidth + t * kTileRows, acc[r][t]);
    }
  }
}

using PanelKernel = void (*)(const Bf16Panel& panel);

template <int Rows>
PanelKernel for_tiles(std::int64_t tiles) {
  switch (tiles) {
    case 1: return panel_kernel<Rows, 1>;
    case 2: return panel_kernel<Rows, 2>;
    case 3: return panel_kernel<Rows, 3>;
    default: return panel_kernel<Rows, 4>;
  }
}

static_assert(kBf16PanelRows == 6 && kBf16PanelTiles == 4, "the instantiations below cover 1..6 x 1..4");

void run_panel(const Bf16Panel& panel) {
  PanelKernel kernel = nullptr;
  switch (panel.rows) {
    case 1: kernel = for_tiles<1>(panel.tiles); break;
    case 2: kernel = for_tiles<2>(panel.tiles); break;
    case 3: kernel = for_tiles<3>(panel.tiles); break;
    case 4: kernel = for_tiles<4>(panel.tiles); break;
    case 5: kernel = for_tiles<5>(panel.tiles); break;
    default: kernel = for_tiles<6>(panel.tiles); break;
  }
  kernel(panel);
}

// bf16_simd.h's vector type: simd_float.h's 16 lanes.
struct Avx512 : Float16 {
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  // to_bf16 per lane with integer arithmetic (not vcvtneps2bf16, whose bf16 result type
  // clang 16 cannot convert, see dot_pairs): round to nearest even, NaNs quieted.
  static void store_bf16(std::uint16_t* out, Reg v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i result = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)),
                                                  _mm512_set1_epi32(0x7F800000));
    result = _mm512_mask_or_epi32(result, nan, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x0040));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(result));
  }
};

}  // namespace

const Bf16Kernels kBf16Avx512Kernels{run_panel, softmax_row<Avx512>, round_row<Avx512>};

}  // namespace q3vl::kernels
