// The kernel documented in resample.h. The passes are written as plain integer loops
// over interleaved RGB (the vertical pass over whole rows) so the compiler vectorises
// them; rows are split across threads for large images.
#include "vision/resample.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "q3vl/error.h"
#include "core/parallel.h"

namespace q3vl::vision {
namespace {

// Keys' cubic convolution with a = -0.5, written as torch's aa_filter / cubic_convolution1/2
// evaluate it (the operation order matters for the last bit of the double weights).
double cubic_torch(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

// Pillow's bicubic_filter (libImaging/Resample.c) evaluates the outer branch differently.
double cubic_pillow(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

std::uint8_t clamp_u8(std::int32_t v) { return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

void horizontal_pass(const Image& in, Image& out, const AxisWeights& w, unsigned threads) {
  const int in_w = in.width, out_w = out.width, taps = w.taps, p = w.precision;
  const std::int32_t half = 1 << (p - 1);
  parallel_rows(out.height, threads, [&](int y0, int y1) {
    for (int y = y0; y < y1; ++y) {
      const std::uint8_t* src = in.rgb.data() + static_cast<std::size_t>(y) * in_w * 3;
      std::uint8_t* dst = out.rgb.data() + static_cast<std::size_t>(y) * out_w * 3;
      for (int x = 0; x < out_w; ++x) {
        const std::int32_t* k = &w.coefficients[static_cast<std::size_t>(x) * taps];
        const std::uint8_t* s = src + static_cast<std::size_t>(w.start[x]) * 3;
        std::int32_t r = half, g = half, b = half;
        for (int j = 0, n = w.count[x]; j < n; ++j, s += 3) {
          r += s[0] * k[j];
          g += s[1] * k[j];
          b += s[2] * k[j];
        }
        dst[3 * x] = clamp_u8(r >> p);
        dst[3 * x + 1] = clamp_u8(g >> p);
        dst[3 * x + 2] = clamp_u8(b >> p);
      }
    }
  });
}

void vertical_pass(const Image& in, Image& out, const AxisWeights& w, unsigned threads) {
  const std::size_t row = static_cast<std::size_t>(in.width) * 3;
  const int taps = w.taps, p = w.precision;
  const std::int32_t half = 1 << (p - 1);
  parallel_rows(out.height, threads, [&](int y0, int y1) {
    std::vector<std::int32_t> acc(row);
    for (int y = y0; y < y1; ++y) {
      const std::int32_t* k = &w.coefficients[static_cast<std::size_t>(y) * taps];
      std::fill(acc.begin(), acc.end(), half);
      for (int j = 0, n = w.count[y]; j < n; ++j) {
        const std::uint8_t* s = in.rgb.data() + static_cast<std::size_t>(w.start[y] + j) * row;
        const std::int32_t kj = k[j];
        std::int32_t* a = acc.data();
        for (std::size_t i = 0; i < row; ++i) a[i] += s[i] * kj;
      }
      std::uint8_t* dst = out.rgb.data() + static_cast<std::size_t>(y) * row;
      for (std::size_t i = 0; i < row; ++i) dst[i] = clamp_u8(acc[i] >> p);
    }
  });
}

}  // namespace

AxisWeights bicubic_axis_weights(std::int64_t in_size, std::int64_t out_size, ResampleOrder mode) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  const int taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  const bool torch = mode == ResampleOrder::torch;

  AxisWeights w;
  w.taps = taps;
  w.start.resize(out_size);
  w.count.resize(out_size);
  std::vector<double> weights(static_cast<std::size_t>(out_size) * taps, 0.0);
  for (std::int64_t i = 0; i < out_size; ++i) {
    const double center = scale * (static_cast<double>(i) + 0.5);
    const std::int64_t xmin = std::max<std::int64_t>(static_cast<std::int64_t>(center - support + 0.5), 0);
    const std::int64_t xmax = std::min<std::int64_t>(static_cast<std::int64_t>(center + support + 0.5), in_size) - xmin;
    double* wi = &weights[static_cast<std::size_t>(i) * taps];
    double total = 0.0;
    for (std::int64_t j = 0; j < xmax; ++j) {
      const double x = (static_cast<double>(j + xmin) - center + 0.5) * invscale;
      wi[j] = torch ? cubic_torch(x) : cubic_pillow(x);
      total += wi[j];
    }
    if (total != 0.0) {
      for (std::int64_t j = 0; j < xmax; ++j) wi[j] /= total;
    }
    w.start[i] = static_cast<std::int32_t>(xmin);
    w.count[i] = static_cast<std::int32_t>(xmax);
  }

  if (torch) {
    const double w_max = *std::max_element(weights.begin(), weights.end());
    int p = 0;
    for (; p < 22; ++p) {
      if (static_cast<int>(0.5 + w_max * static_cast<double>(1 << (p + 1))) >= (1 << 15)) break;
    }
    w.precision = p;
  } else {
    w.precision = 22;  // Pillow's PRECISION_BITS = 32 - 8 - 2
  }
  const double one = static_cast<double>(1 << w.precision);
  w.coefficients.resize(weights.size());
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double v = weights[i];
    const std::int32_t q = static_cast<std::int32_t>(v < 0 ? -0.5 + v * one : 0.5 + v * one);
    w.coefficients[i] = torch ? static_cast<std::int16_t>(q) : q;
  }
  return w;
}

Image resize_bicubic(const Image& image, std::int64_t out_width, std::int64_t out_height, ResampleOrder mode,
                     unsigned threads) {
  if (out_width <= 0 || out_height <= 0 || image.width <= 0 || image.height <= 0) {
    throw_error(ErrorKind::shape, "resize", "size", "positive input and output sizes",
                std::to_string(image.width) + "x" + std::to_string(image.height) + " -> " +
                    std::to_string(out_width) + "x" + std::to_string(out_height));
  }
  const bool need_horizontal = out_width != image.width;
  const bool need_vertical = out_height != image.height;
  if (!need_horizontal && !need_vertical) return image;

  Image horizontal;
  const Image* source = &image;
  if (need_horizontal) {
    horizontal.width = static_cast<int>(out_width);
    horizontal.height = image.height;
    horizontal.rgb.resize(static_cast<std::size_t>(out_width) * image.height * 3);
    horizontal_pass(image, horizontal, bicubic_axis_weights(image.width, out_width, mode), threads);
    if (!need_vertical) return horizontal;
    source = &horizontal;
  }
  Image out;
  out.width = static_cast<int>(out_width);
  out.height = static_cast<int>(out_height);
  out.rgb.resize(static_cast<std::size_t>(out_width) * out_height * 3);
  vertical_pass(*source, out, bicubic_axis_weights(image.height, out_height, mode), threads);
  return out;
}

}  // namespace q3vl::vision
