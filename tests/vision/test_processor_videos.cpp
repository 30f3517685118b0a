// Video preprocessing vs the HF Qwen3VLVideoProcessor goldens: frame indices, fps,
// grid_thw, token counts and "<x.x seconds>" texts exactly; pixel_values within one
// uint8 step (1 / 127.5) — the YUV -> RGB conversion of the reference's FFmpeg build
// (PyAV's) may round differently from Debian's libswscale; lossless RGB must be exact.
#include <gtest/gtest.h>

#include <cmath>

#include "q3vl/processor.h"
#include "q3vl/video.h"
#include "vision/golden_png.h"

namespace q3vl {
namespace {

using testing::processor_golden_case;
using testing::processor_golden_dir;
using testing::read_golden_png;

struct Drift {
  double max_abs = 0.0;
  std::size_t differing = 0;
};

void expect_matches_golden(const VisionInput& got, const nlohmann::json& c, double max_allowed,
                           bool require_exact) {
  const std::string name = c["name"].get<std::string>();
  EXPECT_EQ(got.frame_indices, c["frame_indices"].get<std::vector<std::int64_t>>()) << name;
  EXPECT_EQ(got.fps, c["fps"].get<double>()) << name;
  EXPECT_EQ(got.timestamps, c["timestamps"].get<std::vector<std::string>>()) << name;
  const auto grid = c["grid_thw"][0].get<std::vector<std::int64_t>>();
  EXPECT_EQ(std::vector<std::int64_t>(got.grid_thw.begin(), got.grid_thw.end()), grid) << name;
  EXPECT_EQ(got.num_tokens, c["num_tokens"].get<std::int64_t>()) << name;
  EXPECT_EQ(got.grid_thw[1] * got.grid_thw[2] / 4, c["tokens_per_group"].get<std::int64_t>()) << name;
  if (c.contains("placeholder")) {  // HF's Qwen3VLProcessor.replace_video_token text
    EXPECT_EQ(video_placeholder_text(got, 2), c["placeholder"].get<std::string>()) << name;
  }
  ASSERT_EQ(got.rows, c["pixel_values_shape"][0].get<std::int64_t>()) << name;
  ASSERT_EQ(got.cols, c["pixel_values_shape"][1].get<std::int64_t>()) << name;

  const auto codes = read_golden_png(processor_golden_dir() / "pixels" / (name + ".png"), 1);
  ASSERT_EQ(codes.pixels.size(), got.pixel_values.size()) << name;
  Drift drift;
  for (std::size_t i = 0; i < codes.pixels.size(); ++i) {
    const float expected = (static_cast<float>(codes.pixels[i]) - 127.5f) / 127.5f;
    const double d = std::fabs(static_cast<double>(got.pixel_values[i]) - expected);
    drift.differing += d != 0.0;
    drift.max_abs = std::max(drift.max_abs, d);
  }
  EXPECT_LE(drift.max_abs, max_allowed + 1e-7)
      << name << ": " << drift.differing << " of " << codes.pixels.size() << " values differ";
  if (require_exact) {
    EXPECT_EQ(drift.differing, 0u) << name << ": max |delta| " << drift.max_abs;
  }
  std::printf("[ %s ] %zu of %zu pixel values differ from HF, max |delta| %.6f\n", name.c_str(), drift.differing,
              codes.pixels.size(), drift.max_abs);
}

TEST(VideoGolden, LosslessRgbClipIsExact) {
  const auto c = processor_golden_case("video_rgb");
  const auto config = load_processor_config(processor_golden_dir() / "config");
  const auto path = processor_golden_dir() / "media" / c["media"][0].get<std::string>();
  const VideoMetadata metadata = probe_video(path);
  EXPECT_EQ(metadata.total_num_frames, c["total_num_frames"].get<std::int64_t>());
  EXPECT_EQ(metadata.fps, c["fps"].get<double>());
  expect_matches_golden(preprocess_video_file(path, config.video), c, 0.0, true);
}

TEST(VideoGolden, Yuv420H264ClipWithinOneStep) {
  const auto c = processor_golden_case("video_h264");
  const auto config = load_processor_config(processor_golden_dir() / "config");
  const auto path = processor_golden_dir() / "media" / c["media"][0].get<std::string>();
  EXPECT_EQ(probe_video(path).total_num_frames, c["total_num_frames"].get<std::int64_t>());
  // Odd sampled count (5): the last frame is repeated to fill the third temporal group.
  expect_matches_golden(preprocess_video_file(path, config.video), c, 1.0 / 127.5, false);
}

TEST(VideoGolden, DecodedYuvFramesWithinOneLevel) {
  // The sampled frames as PyAV's rgb24 conversion produced them, stacked vertically.
  const auto c = processor_golden_case("video_h264");
  const auto path = processor_golden_dir() / "media" / c["media"][0].get<std::string>();
  const auto indices = c["frame_indices"].get<std::vector<std::int64_t>>();
  const auto frames = decode_video_frames(path, indices);
  const auto expected = read_golden_png(processor_golden_dir() / "decoded" / "video_h264.png", 3);
  ASSERT_EQ(frames.size(), indices.size());
  std::size_t offset = 0, differing = 0;
  int max_abs = 0;
  for (const Image& f : frames) {
    ASSERT_EQ(f.width, expected.width);
    for (std::uint8_t v : f.rgb) {
      const int d = std::abs(static_cast<int>(v) - static_cast<int>(expected.pixels[offset++]));
      differing += d != 0;
      max_abs = std::max(max_abs, d);
    }
  }
  EXPECT_EQ(offset, expected.pixels.size());
  EXPECT_LE(max_abs, 1) << differing << " of " << offset << " RGB values differ";
  std::printf("[ video_h264 decode ] %zu of %zu RGB values differ from PyAV, max %d\n", differing, offset, max_abs);
}

TEST(VideoGolden, ImageFilesAsFramesAssume24Fps) {
  const auto c = processor_golden_case("video_frames");
  const auto config = load_processor_config(processor_golden_dir() / "config");
  std::vector<std::filesystem::path> files;
  for (const auto& name : c["media"]) files.push_back(processor_golden_dir() / "media" / name.get<std::string>());
  expect_matches_golden(preprocess_image_sequence(files, config.video), c, 0.0, true);
}

}  // namespace
}  // namespace q3vl
