#include "vision/smart_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "q3vl/error.h"

namespace q3vl::vision {

std::int64_t round_half_even(double value) {
  // nearbyint rounds in the current mode, which is round-to-nearest-even unless a
  // caller changed it; do it by hand so the result never depends on the FP env.
  const double floor_value = std::floor(value);
  const double diff = value - floor_value;
  auto f = static_cast<std::int64_t>(floor_value);
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return (f % 2 == 0) ? f : f + 1;
}

namespace {

// Python's repr of a float, which HF's message prints (shortest round-trip digits).
std::string python_float(double value) {
  char text[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  std::string s = text;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

void check_aspect_ratio(std::int64_t height, std::int64_t width) {
  const double ratio = static_cast<double>(std::max(height, width)) / static_cast<double>(std::min(height, width));
  if (ratio > 200) {
    throw_error(ErrorKind::format, std::to_string(width) + "x" + std::to_string(height) + " image",
                "absolute aspect ratio must be smaller than 200, got " + python_float(ratio));
  }
}

std::int64_t floor_to(double value, std::int64_t factor) {
  return static_cast<std::int64_t>(std::floor(value / static_cast<double>(factor))) * factor;
}

std::int64_t ceil_to(double value, std::int64_t factor) {
  return static_cast<std::int64_t>(std::ceil(value / static_cast<double>(factor))) * factor;
}

}  // namespace

ResizedSize smart_resize(std::int64_t height, std::int64_t width, std::int64_t factor,
                         std::int64_t min_pixels, std::int64_t max_pixels) {
  check_aspect_ratio(height, width);
  const double h = static_cast<double>(height), w = static_cast<double>(width), f = static_cast<double>(factor);
  std::int64_t h_bar = round_half_even(h / f) * factor;
  std::int64_t w_bar = round_half_even(w / f) * factor;
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt((h * w) / static_cast<double>(max_pixels));
    h_bar = std::max(factor, floor_to(h / beta, factor));
    w_bar = std::max(factor, floor_to(w / beta, factor));
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    h_bar = ceil_to(h * beta, factor);
    w_bar = ceil_to(w * beta, factor);
  }
  return {h_bar, w_bar};
}

ResizedSize smart_resize_video(std::int64_t num_frames, std::int64_t height, std::int64_t width,
                               std::int64_t temporal_factor, std::int64_t factor,
                               std::int64_t min_pixels, std::int64_t max_pixels) {
  if (num_frames < temporal_factor) {
    throw_error(ErrorKind::format, "video", "num_frames",
                "at least temporal_patch_size = " + std::to_string(temporal_factor) + " frames",
                std::to_string(num_frames));
  }
  if (height < factor || width < factor) {
    const double scale = std::max(static_cast<double>(factor) / static_cast<double>(height),
                                  static_cast<double>(factor) / static_cast<double>(width));
    height = static_cast<std::int64_t>(static_cast<double>(height) * scale);
    width = static_cast<std::int64_t>(static_cast<double>(width) * scale);
  }
  check_aspect_ratio(height, width);
  const double t = static_cast<double>(num_frames), h = static_cast<double>(height),
               w = static_cast<double>(width), f = static_cast<double>(factor);
  std::int64_t h_bar = round_half_even(h / f) * factor;
  std::int64_t w_bar = round_half_even(w / f) * factor;
  const std::int64_t t_bar = round_half_even(t / static_cast<double>(temporal_factor)) * temporal_factor;
  if (t_bar * h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt((t * h * w) / static_cast<double>(max_pixels));
    h_bar = std::max(factor, floor_to(h / beta, factor));
    w_bar = std::max(factor, floor_to(w / beta, factor));
  } else if (t_bar * h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (t * h * w));
    h_bar = ceil_to(h * beta, factor);
    w_bar = ceil_to(w * beta, factor);
  }
  return {h_bar, w_bar};
}

}  // namespace q3vl::vision
