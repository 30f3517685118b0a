// smart_resize against hand-worked cases (spec docs/reference/qwen3vl.md 2.1 / 3.2 tables,
// each re-checked with transformers 5.23's smart_resize functions), including the
// round-half-to-even ties where std::round would give a different size.
#include <gtest/gtest.h>

#include "q3vl/error.h"
#include "vision/smart_resize.h"

namespace q3vl::vision {
namespace {

constexpr std::int64_t kMin = 65536, kMax = 16777216;  // Qwen3-VL image bounds
constexpr std::int64_t kVideoMin = 4096, kVideoMax = 25165824;

struct Case {
  std::int64_t h, w, want_h, want_w;
};

TEST(SmartResize, SpecTable) {
  const Case cases[] = {
      {480, 640, 480, 640},     {1080, 1920, 1088, 1920}, {100, 100, 256, 256},   {720, 1280, 704, 1280},
      {300, 200, 320, 224},     {4000, 6000, 3328, 4992}, {8192, 8192, 4096, 4096},
      {3000, 4000, 3008, 4000},  // a 12-MP photo: only the height changes
      {13, 20, 224, 320},        // below min_pixels: scaled up
  };
  for (const Case& c : cases) {
    const ResizedSize r = smart_resize(c.h, c.w, 32, kMin, kMax);
    EXPECT_EQ(r.height, c.want_h) << c.h << "x" << c.w;
    EXPECT_EQ(r.width, c.want_w) << c.h << "x" << c.w;
  }
}

TEST(SmartResize, TiesRoundHalfToEven) {
  // 208 / 32 = 6.5 -> 6 and 400 / 32 = 12.5 -> 12 (std::round would give 7 and 13).
  const ResizedSize r = smart_resize(208, 400, 32, kMin, kMax);
  EXPECT_EQ(r.height, 192);
  EXPECT_EQ(r.width, 384);
  EXPECT_EQ(round_half_even(0.5), 0);
  EXPECT_EQ(round_half_even(1.5), 2);
  EXPECT_EQ(round_half_even(2.5), 2);
  EXPECT_EQ(round_half_even(2.5000000001), 3);
  EXPECT_EQ(round_half_even(-0.5), 0);
  EXPECT_EQ(round_half_even(-1.5), -2);
}

TEST(SmartResize, AspectRatioAbove200IsHfsError) {
  try {
    smart_resize(10, 2010, 32, kMin, kMax);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_NE(std::string(e.what()).find("absolute aspect ratio must be smaller than 200, got 201.0"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(smart_resize(10, 2000, 32, kMin, kMax));  // exactly 200 is allowed
}

TEST(SmartResizeVideo, SpecTable) {
  struct VideoCase {
    std::int64_t t, h, w, want_h, want_w;
  };
  const VideoCase cases[] = {
      {20, 360, 640, 352, 640},   {6, 1080, 1920, 1088, 1920}, {600, 720, 1280, 128, 256},
      {768, 720, 1280, 128, 224}, {5, 90, 160, 96, 160},
      {4, 10, 900, 32, 2880},  // 10 px high: scaled up to 32 first (5.23), then bounded
  };
  for (const VideoCase& c : cases) {
    const ResizedSize r = smart_resize_video(c.t, c.h, c.w, 2, 32, kVideoMin, kVideoMax);
    EXPECT_EQ(r.height, c.want_h) << c.t << "x" << c.h << "x" << c.w;
    EXPECT_EQ(r.width, c.want_w) << c.t << "x" << c.h << "x" << c.w;
  }
  EXPECT_THROW(smart_resize_video(1, 64, 64, 2, 32, kVideoMin, kVideoMax), Error);
}

}  // namespace
}  // namespace q3vl::vision
