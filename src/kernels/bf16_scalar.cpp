// The portable bf16 path: the reference loops the SIMD paths must match.
#include <cmath>

#include "kernels/bf16_paths.h"

namespace q3vl::kernels {
namespace {

// For each row and output, the pairs in order, even k first.
void run_panel(const Bf16Panel& panel) {
  for (std::int64_t r = 0; r < panel.rows; ++r) {
    const std::uint16_t* x = panel.x + r * panel.x_stride;
    for (std::int64_t t = 0; t < panel.tiles; ++t) {
      const std::uint16_t* w = panel.w + t * panel.tile_stride;
      for (std::int64_t i = 0; i < kTileRows; ++i) {
        float acc = 0.0f;
        for (std::int64_t p = 0; p < panel.k_pairs; ++p) {
          const std::uint16_t* pair = w + p * kTileRows * 2 + 2 * i;
          acc += from_bf16(x[2 * p]) * from_bf16(pair[0]);
          acc += from_bf16(x[2 * p + 1]) * from_bf16(pair[1]);
        }
        panel.out[r * kBf16PanelWidth + t * kTileRows + i] = acc;
      }
    }
  }
}

float softmax_row(const float* s, std::int64_t n, float scale, std::uint16_t* p) {
  float top = -INFINITY;
  for (std::int64_t j = 0; j < n; ++j) top = std::fmax(top, scale * s[j]);
  float sum = 0.0f;
  for (std::int64_t j = 0; j < n; ++j) {
    const float e = std::exp(scale * s[j] - top);
    sum += e;
    p[j] = to_bf16(e);
  }
  if (n % 2 != 0) p[n] = 0;
  return sum;
}

void round_row(const float* x, std::int64_t n, std::uint16_t* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = to_bf16(x[i]);
}

}  // namespace

const Bf16Kernels kBf16ScalarKernels{run_panel, softmax_row, round_row};

}  // namespace q3vl::kernels
