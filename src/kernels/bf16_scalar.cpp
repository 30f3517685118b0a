// The portable bf16 path: the reference loops the SIMD paths must match.
#include <cmath>

#include "kernels/bf16_paths.h"
#include "kernels/bf16_simd.h"

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

// bf16_simd.h's vector type: one lane, the reference the SIMD types must match.
struct Scalar {
  using Reg = float;
  static constexpr int kWidth = 1;
  static Reg load(const float* p) { return *p; }
  static Reg set1(float f) { return f; }
  static Reg max(Reg a, Reg b) { return std::fmax(a, b); }
  static Reg mul(Reg a, Reg b) { return a * b; }
  static Reg fmsub(Reg a, Reg b, Reg c) { return a * b - c; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg exp_nonpositive(Reg x) { return std::exp(x); }
  static float max_lane(Reg v) { return v; }
  static float sum(Reg v) { return v; }
  static void store_bf16(std::uint16_t* out, Reg v) { *out = to_bf16(v); }
};

}  // namespace

const Bf16Kernels kBf16ScalarKernels{run_panel, softmax_row<Scalar>, round_row<Scalar>};

}  // namespace q3vl::kernels
