// Multimodal RoPE position ids for a prompt (HF Qwen3VLModel.get_rope_index).
//
// Every token gets three positions (T, H, W). Text tokens get the same running
// position on all three rows. The merged visual tokens of one image, or of one
// temporal group of a video, form a (h/m) x (w/m) grid placed at the running
// position p: token (row, col) gets (p, p + row, p + col); afterwards the running
// position continues at p + max(h, w)/m. (m = spatial_merge_size.) Videos are
// split into t groups of grid (1, h, w) because each group is its own vision span
// in the prompt (timestamps separate them).
//
// While decoding, the token at absolute index i gets position i + rope_delta on
// all three rows, with rope_delta = (max position + 1) - prompt length.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace q3vl::vision {

// A pixel_values grid in patches: t temporal groups of h x w patches.
struct GridTHW {
  std::int64_t t = 1;
  std::int64_t h = 0;
  std::int64_t w = 0;
};

struct RopeIndexTokens {
  std::int64_t image_token_id = 151655;
  std::int64_t video_token_id = 151656;
  std::int64_t spatial_merge_size = 2;
};

struct MropePositions {
  // Row-major [3, length]: rows T, H, W.
  std::vector<std::int64_t> ids;
  std::int64_t length = 0;
  std::int64_t rope_delta = 0;

  std::int64_t at(int row, std::int64_t index) const { return ids[static_cast<std::size_t>(row * length + index)]; }
};

// Positions for a whole prompt. Image pads consume `image_grids` in order, video
// pads consume `video_grids` (each split into t groups). Throws q3vl::Error(shape)
// if the pad runs do not match the grids' token counts (h*w/m^2 per group).
MropePositions compute_rope_index(std::span<const std::int64_t> input_ids,
                                  std::span<const GridTHW> image_grids,
                                  std::span<const GridTHW> video_grids,
                                  const RopeIndexTokens& tokens);

// Position of a token appended after the prompt at absolute index `index`.
inline std::int64_t decode_position(std::int64_t index, std::int64_t rope_delta) {
  return index + rope_delta;
}

}  // namespace q3vl::vision
