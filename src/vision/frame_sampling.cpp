// sample_frame_indices and video_timestamps (processor.h), transliterated from
// transformers 5.23 Qwen3VLVideoProcessor.sample_frames and
// Qwen3VLProcessor._calculate_timestamps.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "q3vl/processor.h"
#include "vision/smart_resize.h"

namespace q3vl {

namespace {
// HF: "no video metadata ... Defaulting to fps=24".
constexpr double kDefaultFps = 24.0;
}  // namespace

std::vector<std::int64_t> sample_frame_indices(const VideoMetadata& metadata, const VideoProcessorConfig& config) {
  const std::int64_t total = metadata.total_num_frames;
  if (total <= 0) return {};
  const double video_fps = metadata.fps > 0 ? metadata.fps : kDefaultFps;
  auto n = static_cast<std::int64_t>(static_cast<double>(total) / video_fps * config.fps);
  n = std::min({std::max(n, config.min_frames), config.max_frames, total});
  // numpy.linspace(0, total - 1, n): i * step, the last value set to the stop exactly.
  std::vector<std::int64_t> indices(static_cast<std::size_t>(n));
  if (n == 1) {
    indices[0] = 0;
    return indices;
  }
  const double stop = static_cast<double>(total - 1);
  const double step = stop / static_cast<double>(n - 1);
  for (std::int64_t i = 0; i < n; ++i) {
    const double y = i == n - 1 ? stop : static_cast<double>(i) * step;
    indices[static_cast<std::size_t>(i)] = vision::round_half_even(y);
  }
  return indices;
}

std::vector<std::string> video_timestamps(const std::vector<std::int64_t>& indices, double fps,
                                          std::int64_t temporal_patch_size) {
  if (indices.empty()) return {};
  if (fps <= 0) fps = kDefaultFps;
  std::vector<std::int64_t> padded = indices;
  while (static_cast<std::int64_t>(padded.size()) % temporal_patch_size != 0) padded.push_back(padded.back());
  std::vector<std::string> stamps;
  for (std::size_t i = 0; i < padded.size(); i += static_cast<std::size_t>(temporal_patch_size)) {
    const double first = static_cast<double>(padded[i]) / fps;
    const double last = static_cast<double>(padded[i + temporal_patch_size - 1]) / fps;
    char text[64];
    // printf's %.1f rounds the exact binary value half-to-even, as Python's format does.
    std::snprintf(text, sizeof(text), "<%.1f seconds>", (first + last) / 2);
    stamps.emplace_back(text);
  }
  return stamps;
}

}  // namespace q3vl
