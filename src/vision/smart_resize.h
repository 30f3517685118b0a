// Qwen's smart_resize: the target size of an image (or of every frame of a video) so
// both sides are multiples of `factor` (patch_size * merge_size) and the pixel count
// lies within [min_pixels, max_pixels], keeping the aspect ratio as closely as possible.
//
// Transliterated from transformers 5.23 (qwen2_vl/image_processing_qwen2_vl.py and
// qwen3_vl/video_processing_qwen3_vl.py): all arithmetic in IEEE double, Python's
// round() (half to even: 6.5 -> 6, 12.5 -> 12), floor/ceil as math.floor/ceil.
#pragma once

#include <cstdint>

namespace q3vl::vision {

struct ResizedSize {
  std::int64_t height = 0;  // pixels
  std::int64_t width = 0;   // pixels
};

// Python round(): nearest integer, ties to even.
std::int64_t round_half_even(double value);

// Images. Throws q3vl::Error(format) "absolute aspect ratio must be smaller than 200,
// got R" (HF's ValueError text) when max(h, w) / min(h, w) > 200. REQUIRES h, w > 0.
ResizedSize smart_resize(std::int64_t height, std::int64_t width, std::int64_t factor,
                         std::int64_t min_pixels, std::int64_t max_pixels);

// Videos: bounds apply to num_frames * h * w (the frame count rounded half-even to a
// multiple of temporal_factor in the comparison); frames smaller than `factor` on a
// side are first scaled up (int() truncation), as 5.23 does. Throws
// q3vl::Error(format) if num_frames < temporal_factor, or for the aspect ratio.
ResizedSize smart_resize_video(std::int64_t num_frames, std::int64_t height, std::int64_t width,
                               std::int64_t temporal_factor, std::int64_t factor,
                               std::int64_t min_pixels, std::int64_t max_pixels);

}  // namespace q3vl::vision
