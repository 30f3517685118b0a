// Processor config reading: the Hub layout and transformers 5.x's processor_config.json
// (both committed under tests/goldens/processor/config, the latter written by HF's
// save_pretrained) give the same Qwen3-VL values; invalid fields name file and field;
// per-request overrides and max_tokens bound the resize as documented.
#include <gtest/gtest.h>

#include <limits>

#include <fstream>

#include "q3vl/error.h"
#include "q3vl/processor.h"
#include "support/test_paths.h"
#include "vision/golden_png.h"

namespace q3vl {
namespace {

using testing::processor_golden_dir;

void expect_qwen3vl_values(const ProcessorConfig& c) {
  EXPECT_EQ(c.image.min_pixels, 65536);
  EXPECT_EQ(c.image.max_pixels, 16777216);
  EXPECT_EQ(c.image.patch_size, 16);
  EXPECT_EQ(c.image.temporal_patch_size, 2);
  EXPECT_EQ(c.image.merge_size, 2);
  EXPECT_EQ(c.image.image_mean, (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c.image.image_std, (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(c.video.min_pixels, 4096);
  EXPECT_EQ(c.video.max_pixels, 25165824);
  EXPECT_EQ(c.video.patch_size, 16);
  EXPECT_EQ(c.video.fps, 2.0);
  EXPECT_EQ(c.video.min_frames, 4);
  EXPECT_EQ(c.video.max_frames, 768);
}

TEST(ProcessorConfig, HubLayout) { expect_qwen3vl_values(load_processor_config(processor_golden_dir() / "config")); }

TEST(ProcessorConfig, TransformersV5Layout) {
  expect_qwen3vl_values(load_processor_config(processor_golden_dir() / "config" / "v5"));
}

std::filesystem::path write_config(const std::string& name, const std::string& json) {
  const auto dir = testing::work_dir() / "processor_config" / name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "preprocessor_config.json") << json;
  return dir;
}

TEST(ProcessorConfig, MinMaxPixelsOverrideSizeAsHfConstructorDoes) {
  const auto dir = write_config("override", R"({"size": {"shortest_edge": 100, "longest_edge": 2000},
                                              "max_pixels": 5000, "patch_size": 16})");
  const auto c = load_processor_config(dir);
  EXPECT_EQ(c.image.min_pixels, 100);
  EXPECT_EQ(c.image.max_pixels, 5000);
  // No video config: the class defaults.
  EXPECT_EQ(c.video.max_pixels, 768 * 32 * 32);
}

TEST(ProcessorConfig, InvalidFieldsNameFileAndField) {
  const auto dir = write_config("bad", R"({"patch_size": -16})");
  try {
    load_processor_config(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::config);
    EXPECT_NE(std::string(e.what()).find("preprocessor_config.json: patch_size: expected positive integer, got -16"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_processor_config(write_config("std", R"({"image_std": [0.5, 0, 0.5]})")), Error);
  EXPECT_THROW(load_processor_config(write_config("mean", R"({"image_mean": [0.5, 0.5]})")), Error);
  EXPECT_THROW(load_processor_config(write_config("json", R"({"patch_size": )")), Error);
  EXPECT_THROW(load_processor_config(testing::work_dir() / "no_such_dir"), Error);
}

TEST(VisionRequest, OverridesAndMaxTokens) {
  const auto config = load_processor_config(processor_golden_dir() / "config").image;
  Image image;
  image.width = 640;
  image.height = 480;
  image.rgb.assign(640 * 480 * 3, 128);
  EXPECT_EQ(preprocess_image(image, config).num_tokens, 300);  // 480x640 -> (1, 30, 40)
  VisionRequest request;
  request.max_tokens = 100;  // <= 100 * 32 * 32 pixels
  const VisionInput capped = preprocess_image(image, config, request);
  EXPECT_LE(capped.num_tokens, 100);
  // beta = sqrt(480 * 640 / 102400) = sqrt(3): floor(480 / beta / 32) = 8, floor(640 / beta / 32) = 11.
  EXPECT_EQ(capped.resized_height, 256);
  EXPECT_EQ(capped.resized_width, 352);
  EXPECT_EQ(capped.num_tokens, 88);
  // A cap below the config's min_pixels (64 tokens) still holds.
  request.max_tokens = 20;
  Image small;
  small.width = 173;
  small.height = 131;
  small.rgb.assign(173 * 131 * 3, 7);
  EXPECT_LE(preprocess_image(small, config, request).num_tokens, 20);
  request = {};
  request.min_pixels = 1000000;
  // beta = sqrt(1e6 / 307200): ceil(480 * beta / 32) = 28, ceil(640 * beta / 32) = 37.
  const VisionInput raised = preprocess_image(image, config, request);
  EXPECT_EQ(raised.resized_height, 896);
  EXPECT_EQ(raised.resized_width, 1184);
  request = {};
  request.max_pixels = 1000;  // below the config's min_pixels: HF's max branch, one 32x32 block
  EXPECT_EQ(preprocess_image(image, config, request).num_tokens, 1);
  request.max_pixels = 0;
  EXPECT_THROW(preprocess_image(image, config, request), Error);
}

// VisionProcessorConfig::max_resized_pixels bounds what a config or a request may ask a
// resize to produce, before anything is allocated; max_tokens cannot overflow.
TEST(VisionRequest, ResizeBoundsAreLimited) {
  auto config = load_processor_config(processor_golden_dir() / "config").image;
  Image image;
  image.width = 64;
  image.height = 48;
  image.rgb.assign(64 * 48 * 3, 9);
  const auto error_of = [&](const VisionRequest& request) {
    try {
      preprocess_image(image, config, request);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::limit);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  VisionRequest request;
  request.min_pixels = (std::int64_t{1} << 25) + 1;
  EXPECT_EQ(error_of(request), "request: min_pixels/max_pixels: expected at most 33554432 pixels "
                               "(VisionProcessorConfig::max_resized_pixels), got 33554433 / 16777216");
  config.max_resized_pixels = 4096;
  EXPECT_EQ(error_of({}), "request: min_pixels/max_pixels: expected at most 4096 pixels "
                          "(VisionProcessorConfig::max_resized_pixels), got 65536 / 16777216");
  // Without do_resize the image itself is bounded: 64 x 48 = 3072 pixels, limit 3000.
  config.do_resize = false;
  config.min_pixels = config.max_pixels = config.max_resized_pixels = 3000;
  EXPECT_EQ(error_of({}), "image: pixels: expected at most 3000 (VisionProcessorConfig::max_resized_pixels), got 64x48");
  config = load_processor_config(processor_golden_dir() / "config").image;
  request = {};
  request.max_tokens = std::numeric_limits<std::int64_t>::max();  // no cap, no overflow
  EXPECT_EQ(preprocess_image(image, config, request).num_tokens, preprocess_image(image, config).num_tokens);
}

TEST(VisionOutput, ConstantImageNormalisesExactly) {
  // A flat image stays flat through any resize; (200 - 127.5) / 127.5 in float32.
  const auto config = load_processor_config(processor_golden_dir() / "config").image;
  Image image;
  image.width = 333;
  image.height = 77;
  image.rgb.assign(333 * 77 * 3, 200);
  const VisionInput out = preprocess_image(image, config);
  const float want = (200.0f - 127.5f) / 127.5f;
  for (float v : out.pixel_values) ASSERT_EQ(v, want);
  EXPECT_EQ(out.cols, 1536);
  EXPECT_EQ(out.rows * 4, out.num_tokens * 16);
}

}  // namespace
}  // namespace q3vl
