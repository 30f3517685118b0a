// Image preprocessing vs the HF processor goldens (tests/reference/make_processor_goldens.py):
// decode the committed media with q3vl, preprocess with the committed Qwen3-VL config,
// compare grid_thw and placeholder counts exactly and pixel_values value by value.
// pixel_values are stored as uint8 codes u (value = (u - 127.5) / 127.5, exact in float32).
// Metric: max |delta| over all values; the aim is 0 (bit-identical), failure above
// one uint8 step (1 / 127.5).
#include <gtest/gtest.h>

#include <cmath>

#include "q3vl/image.h"
#include "q3vl/processor.h"
#include "vision/golden_png.h"

namespace q3vl {
namespace {

using testing::processor_golden_case;
using testing::processor_golden_cases;
using testing::processor_golden_dir;
using testing::read_golden_png;

struct PixelComparison {
  double max_abs = 0.0;
  std::size_t differing = 0;
};

PixelComparison compare_codes(const VisionInput& got, const testing::GoldenPng& codes) {
  PixelComparison cmp;
  for (std::size_t i = 0; i < codes.pixels.size(); ++i) {
    const float expected = (static_cast<float>(codes.pixels[i]) - 127.5f) / 127.5f;
    const double d = std::fabs(static_cast<double>(got.pixel_values[i]) - expected);
    if (d != 0.0) ++cmp.differing;
    cmp.max_abs = std::max(cmp.max_abs, d);
  }
  return cmp;
}

class ImageGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageGolden, MatchesHfProcessor) {
  const auto c = processor_golden_case(GetParam());
  const ProcessorConfig config = load_processor_config(processor_golden_dir() / "config");
  VisionRequest request;
  if (!c["size"].is_null()) {
    request.min_pixels = c["size"]["shortest_edge"].get<std::int64_t>();
    request.max_pixels = c["size"]["longest_edge"].get<std::int64_t>();
  }
  const auto media = processor_golden_dir() / "media" / c["media"][0].get<std::string>();
  const Image image = decode_image_file(media);
  const VisionInput got = preprocess_image(image, config.image, request);

  const auto grid = c["grid_thw"][0];
  EXPECT_EQ(got.grid_thw[0], grid[0].get<std::int64_t>());
  EXPECT_EQ(got.grid_thw[1], grid[1].get<std::int64_t>());
  EXPECT_EQ(got.grid_thw[2], grid[2].get<std::int64_t>());
  EXPECT_EQ(got.num_tokens, c["num_tokens"].get<std::int64_t>());
  ASSERT_EQ(got.rows, c["pixel_values_shape"][0].get<std::int64_t>());
  ASSERT_EQ(got.cols, c["pixel_values_shape"][1].get<std::int64_t>());

  const auto codes = read_golden_png(processor_golden_dir() / "pixels" / (GetParam() + ".png"), 1);
  ASSERT_EQ(codes.pixels.size(), got.pixel_values.size());
  const PixelComparison cmp = compare_codes(got, codes);
  EXPECT_LE(cmp.max_abs, 1.0 / 127.5 + 1e-7)
      << GetParam() << ": " << image.width << "x" << image.height << " -> " << got.resized_width << "x"
      << got.resized_height << ", " << cmp.differing << " of " << codes.pixels.size() << " values differ";
  // Bit-identical is what the kernel reproduces; report any drift loudly.
  EXPECT_EQ(cmp.differing, 0u) << GetParam() << ": max |delta| " << cmp.max_abs;
}

std::vector<std::string> image_case_names() {
  std::vector<std::string> names;
  for (const auto& c : processor_golden_cases()) {
    if (c["kind"] == "image") names.push_back(c["name"].get<std::string>());
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Hf, ImageGolden, ::testing::ValuesIn(image_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The decoders alone vs what the reference decoded (torchvision, or PIL for BMP,
// animated GIF and 16-bit PNG): exact, since every format here is lossless or
// decoded by the same libjpeg-turbo / libwebp algorithms.
class DecodeGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeGolden, MatchesReferenceDecoder) {
  const auto c = processor_golden_case(GetParam());
  const Image image = decode_image_file(processor_golden_dir() / "media" / c["media"][0].get<std::string>());
  const auto expected = read_golden_png(processor_golden_dir() / "decoded" / (GetParam() + ".png"), 3);
  ASSERT_EQ(image.width, expected.width);
  ASSERT_EQ(image.height, expected.height);
  std::size_t differing = 0;
  int max_abs = 0;
  for (std::size_t i = 0; i < expected.pixels.size(); ++i) {
    const int d = std::abs(static_cast<int>(image.rgb[i]) - static_cast<int>(expected.pixels[i]));
    differing += d != 0;
    max_abs = std::max(max_abs, d);
  }
  EXPECT_EQ(differing, 0u) << GetParam() << ": max |delta| " << max_abs << " levels";
}

INSTANTIATE_TEST_SUITE_P(Hf, DecodeGolden, ::testing::ValuesIn(image_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace q3vl
