// The bench layer's small pieces: statistics, the synthetic image, the --image parser.
#include <gtest/gtest.h>

#include <cmath>

#include "bench/stats.h"
#include "bench/synthetic_image.h"
#include "q3vl/bench.h"
#include "q3vl/error.h"
#include "q3vl/image.h"

namespace q3vl {
namespace {

TEST(BenchStats, MeanAndSampleStandardDeviation) {
  const BenchStat s = bench::summarize({1.0, 2.0, 3.0, 4.0});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.sd, std::sqrt(5.0 / 3.0), 1e-15);  // sum of squares 5, n - 1 = 3
  EXPECT_EQ(s.samples.size(), 4u);
  const BenchStat one = bench::summarize({7.0});
  EXPECT_DOUBLE_EQ(one.mean, 7.0);
  EXPECT_DOUBLE_EQ(one.sd, 0.0);
}

TEST(SyntheticImage, DecodesToThePatternThroughTheProductDecoder) {
  // 5 pixels wide: 15 bytes per row, padded to 16, so row padding is exercised.
  const auto bytes = bench::synthetic_bmp(5, 3);
  EXPECT_EQ(sniff_image_format(bytes), ImageFormat::bmp);
  const Image image = decode_image(bytes, "synthetic.bmp");
  ASSERT_EQ(image.width, 5);
  ASSERT_EQ(image.height, 3);
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 5; ++x) {
      const std::uint8_t* px = image.rgb.data() + 3 * (y * 5 + x);
      EXPECT_EQ(px[0], 255 * x / 4) << x << "," << y;
      EXPECT_EQ(px[1], 255 * y / 2) << x << "," << y;
      EXPECT_EQ(px[2], (x ^ y) & 255) << x << "," << y;
    }
  }
}

TEST(BenchImageSizes, ParsesListsAndNone) {
  const auto sizes = parse_bench_image_sizes("448x448,1024x768", "--image");
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[1].width, 1024);
  EXPECT_EQ(sizes[1].height, 768);
  EXPECT_TRUE(parse_bench_image_sizes("none", "--image").empty());
  EXPECT_TRUE(parse_bench_image_sizes("", "--image").empty());
}

TEST(BenchImageSizes, MalformedItemsAreUsageErrorsNamingTheFlag) {
  for (const char* bad : {"448", "x448", "448x", "0x10", "12x3a", "448x448,", "-4x4"}) {
    try {
      parse_bench_image_sizes(bad, "--image");
      ADD_FAILURE() << bad << ": expected q3vl::Error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::usage) << bad;
      EXPECT_NE(std::string(e.what()).find("--image"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace q3vl
