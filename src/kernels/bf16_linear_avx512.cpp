// The AVX512-BF16 panel: vdpbf16ps multiplies a tile's pair vector (16 rows x 2 k, the
// layout of bf16_linear.h) by one activation row's broadcast pair and adds both products
// to the row's 16 float accumulators. A panel keeps ROWS x TILES accumulators (up to
// 6 x 4 = 24 zmm) and loads TILES weight vectors per pair, so each weight byte loaded
// from L1/L2 feeds ROWS instructions.
#include <immintrin.h>

#include "kernels/bf16_linear.h"

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
  for (int r = 0; r < Rows; ++r) {
    for (int t = 0; t < Tiles; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const std::uint16_t* w = panel.w;
  const std::uint16_t* x = panel.x;
  for (std::int64_t p = 0; p < panel.k_pairs; ++p, w += kTileRows * 2, x += 2) {
    __m512i weights[Tiles];
    for (int t = 0; t < Tiles; ++t) weights[t] = _mm512_loadu_si512(w + t * panel.tile_stride);
    for (int r = 0; r < Rows; ++r) {
      for (int t = 0; t < Tiles; ++t) acc[r][t] = dot_pairs(acc[r][t], weights[t], x + r * panel.x_stride);
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int t = 0; t < Tiles; ++t) {
      _mm512_store_ps(panel.out + r * kBf16PanelTiles * kTileRows + t * kTileRows, acc[r][t]);
    }
  }
}

template <int Rows>
Bf16PanelKernel for_tiles(std::int64_t tiles) {
  switch (tiles) {
    case 1: return panel_kernel<Rows, 1>;
    case 2: return panel_kernel<Rows, 2>;
    case 3: return panel_kernel<Rows, 3>;
    default: return panel_kernel<Rows, 4>;
  }
}

static_assert(kBf16PanelRows == 6 && kBf16PanelTiles == 4, "the instantiations below cover 1..6 x 1..4");

}  // namespace

void bf16_panel_avx512bf16(const Bf16Panel& panel) {
  Bf16PanelKernel kernel = nullptr;
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

}  // namespace q3vl::kernels
