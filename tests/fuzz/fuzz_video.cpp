// Video containers through FFmpeg as a video_url part goes: probe -> frame sampling
// (fps, min/max frames) -> decode the sampled frames -> preprocess. The bytes are
// written to a scratch file because the product opens videos by path.
#include <cstddef>
#include <cstdint>
#include <span>

#include "harness.h"
#include "q3vl/processor.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = q3vl::fuzz::write_scratch_file("clip.bin", std::span(data, size));
  q3vl::VideoProcessorConfig config;
  config.max_pixels = 32 * 32 * 32;
  config.max_frames = 8;
  q3vl::ImageLimits limits;
  limits.max_pixels = 2048 * 2048;
  limits.max_side = 4096;
  q3vl::fuzz::expect_clean([&] {
    const q3vl::VisionInput input = q3vl::preprocess_video_file(path, config, {}, limits);
    q3vl::fuzz::require(input.pixel_values.size() == static_cast<std::size_t>(input.rows * input.cols),
                        "pixel_values is rows x cols");
    q3vl::fuzz::require(input.frame_indices.size() <= static_cast<std::size_t>(config.max_frames) + 1,
                        "sampled frames within max_frames");
  });
  return 0;
}
