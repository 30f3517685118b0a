// Antialiased bicubic resize of 8-bit RGB images, bit-exact with the reference.
//
// The reference (torchvision resize(BICUBIC, antialias=True) on a uint8 tensor, which
// runs torch's native uint8 kernel, aten/src/ATen/native/cpu/UpSampleKernel.cpp +
// UpSampleKernelAVXAntialias.h) works per axis:
//   scale = in / out;  support = 2 * max(scale, 1)          (cubic, a = -0.5)
//   for output i: center = scale * (i + 0.5)
//     xmin = max(int(center - support + 0.5), 0), xmax = min(int(center + support + 0.5), in)
//     w_j = cubic((xmin + j - center + 0.5) / max(scale, 1)), normalised to sum 1   (double)
//   fixed point: torch picks `precision` = the largest p <= 22 with
//     round(w_max * 2^(p+1)) < 2^15 (w_max over the whole axis) and stores
//     int16 w = trunc(w * 2^p +- 0.5); Pillow uses p = 22 and int32 weights.
//   out = clamp((2^(p-1) + sum_j in[xmin + j] * w_j) >> p, 0, 255)   (int32, arithmetic shift)
// The horizontal pass runs first, over every input row, into a uint8 buffer; then
// the vertical pass. An axis whose size does not change is not resampled at all.
#pragma once

#include <cstdint>
#include <vector>

#include "q3vl/image.h"
#include "q3vl/processor.h"

namespace q3vl::vision {

// Fixed-point weights of one axis: output i reads inputs [start[i], start[i] + count[i])
// with coefficients[i * taps + j] (zero-padded to `taps`).
struct AxisWeights {
  int taps = 0;
  int precision = 0;  // bits
  std::vector<std::int32_t> start;
  std::vector<std::int32_t> count;
  std::vector<std::int32_t> coefficients;
};

AxisWeights bicubic_axis_weights(std::int64_t in_size, std::int64_t out_size, ResampleOrder mode);

// Resizes to out_width x out_height (pixels, both > 0). Uses up to `threads` worker
// threads for large images (0 = hardware concurrency). Same result for any thread count.
Image resize_bicubic(const Image& image, std::int64_t out_width, std::int64_t out_height,
                     ResampleOrder mode = ResampleOrder::torch, unsigned threads = 0);

}  // namespace q3vl::vision
