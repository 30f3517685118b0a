// The uint8 antialiased bicubic kernel: hand-worked weights (a 2 -> 4 upscale worked on
// paper: cubic(0.25) = 0.8671875, cubic(1.25) = -0.0703125, ...), the Pillow variant
// bit-exact against Pillow 13's Image.resize(BICUBIC) (goldens), and invariants. The
// torch variant is checked bit-exact against HF in test_processor_images.cpp.
#include <gtest/gtest.h>

#include "q3vl/image.h"
#include "vision/golden_png.h"
#include "vision/resample.h"

namespace q3vl::vision {
namespace {

TEST(ResampleWeights, HandWorkedUpscale2To4) {
  // scale 0.5, support 2 -> 5 taps; every output reads inputs {0, 1}.
  // Normalised weights: out0 (1.0882353, -0.0882353), out1 (0.7928571, 0.2071429), mirrored.
  // torch precision: largest p with 1.0882353 * 2^p < 2^15 -> p = 14.
  const AxisWeights w = bicubic_axis_weights(2, 4, ResampleOrder::torch);
  EXPECT_EQ(w.taps, 5);
  EXPECT_EQ(w.precision, 14);
  EXPECT_EQ(w.start, (std::vector<std::int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(w.count, (std::vector<std::int32_t>{2, 2, 2, 2}));
  const std::int32_t want[4][2] = {{17830, -1446}, {12990, 3394}, {3394, 12990}, {-1446, 17830}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(w.coefficients[i * 5], want[i][0]) << i;
    EXPECT_EQ(w.coefficients[i * 5 + 1], want[i][1]) << i;
    EXPECT_EQ(w.coefficients[i * 5 + 2], 0) << i;
  }
  const AxisWeights p = bicubic_axis_weights(2, 4, ResampleOrder::pillow);
  EXPECT_EQ(p.precision, 22);
  EXPECT_EQ(p.coefficients[0], 4564390);  // round(1.0882352941 * 2^22)
}

TEST(ResampleWeights, DownscaleSupportWidensAndSumsToOne) {
  const AxisWeights w = bicubic_axis_weights(5000, 1234, ResampleOrder::torch);
  EXPECT_EQ(w.taps, 2 * 9 + 1);  // support = 2 * 5000 / 1234 = 8.1 -> ceil 9
  for (std::size_t i = 0; i < w.start.size(); ++i) {
    std::int64_t sum = 0;
    for (int j = 0; j < w.taps; ++j) sum += w.coefficients[i * w.taps + j];
    EXPECT_NEAR(static_cast<double>(sum), static_cast<double>(1 << w.precision), w.count[i]) << i;
    EXPECT_LE(w.start[i] + w.count[i], 5000);
  }
}

Image gradient(int width, int height) {
  Image image;
  image.width = width;
  image.height = height;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.rgb.push_back(static_cast<std::uint8_t>((x * 7 + y * 3) % 256));
      image.rgb.push_back(static_cast<std::uint8_t>((x * x + y) % 256));
      image.rgb.push_back(static_cast<std::uint8_t>(255 - (y * 5) % 256));
    }
  }
  return image;
}

TEST(Resample, SameSizeIsIdentityAndThreadsDoNotChangeResults) {
  const Image image = gradient(97, 61);
  EXPECT_EQ(resize_bicubic(image, 97, 61).rgb, image.rgb);
  const Image big = gradient(1500, 900);
  const Image one = resize_bicubic(big, 1216, 1088, ResampleOrder::torch, 1);
  const Image four = resize_bicubic(big, 1216, 1088, ResampleOrder::torch, 4);
  EXPECT_EQ(one.rgb, four.rgb);
}

class PillowGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(PillowGolden, MatchesPillowImageResize) {
  const auto c = testing::processor_golden_case(GetParam());
  const auto dir = testing::processor_golden_dir();
  const auto decoded = testing::read_golden_png(dir / "decoded" / (GetParam() + ".png"), 3);
  const auto expected = testing::read_golden_png(dir / "decoded" / ("pillow_" + GetParam() + ".png"), 3);
  Image image;
  image.width = decoded.width;
  image.height = decoded.height;
  image.rgb = decoded.pixels;
  const Image got = resize_bicubic(image, expected.width, expected.height, ResampleOrder::pillow);
  std::size_t differing = 0;
  for (std::size_t i = 0; i < got.rgb.size(); ++i) differing += got.rgb[i] != expected.pixels[i];
  EXPECT_EQ(differing, 0u) << GetParam() << " " << image.width << "x" << image.height << " -> " << expected.width
                           << "x" << expected.height;
}

INSTANTIATE_TEST_SUITE_P(Pillow13, PillowGolden, ::testing::Values("odd_jpeg", "tie", "wide", "tiny"));

}  // namespace
}  // namespace q3vl::vision
