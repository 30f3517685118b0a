// Frame sampling and timestamps against the spec's worked example (3.4: 10 s at 30 fps,
// re-checked with numpy) and HF's edge rules (clamps, unknown fps, odd counts).
#include <gtest/gtest.h>

#include "q3vl/processor.h"

namespace q3vl {
namespace {

TEST(FrameSampling, TenSecondsAt30Fps) {
  VideoProcessorConfig config;  // fps 2, min 4, max 768
  const VideoMetadata metadata{300, 30.0, 640, 360};
  const std::vector<std::int64_t> want = {0,   16,  31,  47,  63,  79,  94,  110, 126, 142,
                                          157, 173, 189, 205, 220, 236, 252, 268, 283, 299};
  const auto indices = sample_frame_indices(metadata, config);
  EXPECT_EQ(indices, want);
  const std::vector<std::string> stamps = {"<0.3 seconds>", "<1.3 seconds>", "<2.4 seconds>", "<3.4 seconds>",
                                           "<4.5 seconds>", "<5.5 seconds>", "<6.6 seconds>", "<7.6 seconds>",
                                           "<8.7 seconds>", "<9.7 seconds>"};
  EXPECT_EQ(video_timestamps(indices, 30.0, 2), stamps);
}

TEST(FrameSampling, Clamps) {
  VideoProcessorConfig config;
  // 1 s at 30 fps -> int(2) = 2 frames, raised to min_frames = 4.
  EXPECT_EQ(sample_frame_indices({30, 30.0, 8, 8}, config), (std::vector<std::int64_t>{0, 10, 19, 29}));
  // Only 3 frames exist: never more than the video has.
  EXPECT_EQ(sample_frame_indices({3, 30.0, 8, 8}, config), (std::vector<std::int64_t>{0, 1, 2}));
  // One frame.
  EXPECT_EQ(sample_frame_indices({1, 30.0, 8, 8}, config), (std::vector<std::int64_t>{0}));
  // 1 hour at 30 fps -> 7200, capped at max_frames = 768.
  EXPECT_EQ(sample_frame_indices({108000, 30.0, 8, 8}, config).size(), 768u);
  // Unknown fps: 24 assumed (48 frames -> int(48 / 24 * 2) = 4).
  EXPECT_EQ(sample_frame_indices({48, 0.0, 8, 8}, config), (std::vector<std::int64_t>{0, 16, 31, 47}));
}

TEST(FrameSampling, OddCountRepeatsLastIndexInTimestamps) {
  // 5 indices -> groups (0,16), (32,48), (64,64) at 25 fps.
  EXPECT_EQ(video_timestamps({0, 16, 32, 48, 64}, 25.0, 2),
            (std::vector<std::string>{"<0.3 seconds>", "<1.6 seconds>", "<2.6 seconds>"}));
}

TEST(FrameSampling, TimestampTiesRoundHalfEvenOnTheBinaryValue) {
  // (0 + 1) / 2 / 4 fps = 0.125 s exactly -> "0.1" (half to even); 0.375 -> "0.4".
  EXPECT_EQ(video_timestamps({0, 1, 1, 2}, 4.0, 2),
            (std::vector<std::string>{"<0.1 seconds>", "<0.4 seconds>"}));
}

}  // namespace
}  // namespace q3vl
