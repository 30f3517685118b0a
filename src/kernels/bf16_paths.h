// The pieces each bf16 path (scalar, AVX2, AVX512-BF16) implements, shared by
// q3vl.Bf16Linear (bf16_linear.h) and q3vl.Bf16Attention (bf16_attention.h). Internal to
// the kernels library.
#pragma once

#include <cstdint>

#include "kernels/bf16_linear.h"

namespace q3vl::kernels {

// A panel: rows [0, rows) of x (bf16, row stride x_stride, 2·k_pairs values used) times
// tiles [0, tiles) of a bf16_linear.h-layout matrix (tile t at w + t·tile_stride):
//     out[r · 64 + 16 · t + i] = Σ_p x[r, 2p]·w(t, p, i, 0) + x[r, 2p + 1]·w(t, p, i, 1)
// rows <= kBf16PanelRows, tiles <= kBf16PanelTiles.
inline constexpr std::int64_t kBf16PanelRows = 6;
inline constexpr std::int64_t kBf16PanelTiles = 4;
inline constexpr std::int64_t kBf16PanelWidth = kBf16PanelTiles * kTileRows;
struct Bf16Panel {
  const std::uint16_t* x = nullptr;
  std::int64_t x_stride = 0;
  std::int64_t rows = 0;
  const std::uint16_t* w = nullptr;
  std::int64_t tile_stride = 0;
  std::int64_t tiles = 0;
  std::int64_t k_pairs = 0;
  float* out = nullptr;  // [kBf16PanelRows, kBf16PanelWidth]
};

struct Bf16Kernels {
  void (*panel)(const Bf16Panel& panel);
  // One softmax row: p[j] = bf16(e^(scale · s[j] − max_j scale · s[j])) for j < n, and
  // returns Σ_j of the unrounded e^(...) (float). p[n] = 0 when n is odd (the pair's pad).
  float (*softmax_row)(const float* s, std::int64_t n, float scale, std::uint16_t* p);
  // out[i] = to_bf16(x[i]) for i < n (bf16_linear.h's rounding, NaN included).
  void (*round_row)(const float* x, std::int64_t n, std::uint16_t* out);
};

const Bf16Kernels& bf16_kernels(Bf16Path path);

extern const Bf16Kernels kBf16ScalarKernels;
extern const Bf16Kernels kBf16Avx2Kernels;
extern const Bf16Kernels kBf16Avx512Kernels;

}  // namespace q3vl::kernels
