// Grid-dependent tables the vision graph takes as inputs, computed on the host.
//
// The vision encoder's only grid-dependent parts are (HF transformers 5.23,
// vision_utils.py + modeling_qwen3_vl.py Qwen3VLVisionModel.forward):
//   - the learned position embedding, bilinearly resampled from its G x G table
//     (G = sqrt(num_position_embeddings)) to the h x w patch grid with endpoints
//     aligned: four taps into the table and four weights per patch;
//   - the 2-D rotary embedding: cos/sin of (row, col) * inv_freq per patch;
//   - the attention segments: one per image, one per temporal group of a video
//     (HF's cu_seqlens); attention never crosses a segment.
// All three depend only on one frame's (h, w), so one table serves every segment
// of that size (the temporal groups of a video, or several same-size images).
// Rows are in merge-block order (HF's patchify order): for merge size m, row r of a
// frame enumerates (bh, bw, ih, iw) with iw innermost; patch (row, col) =
// (m*bh + ih, m*bw + iw).
//
// Numerics follow transformers 5.23 in float32 exactly (see grid_tables.cpp).
// Everything here is a plain value; thread-safe to share read-only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "q3vl/config.h"
#include "vision/rope_index.h"  // GridTHW

namespace q3vl::vision {

// The config values the tables depend on.
struct GridTableParams {
  std::int64_t spatial_merge_size = 2;
  std::int64_t num_grid_per_side = 48;  // G: the learned table is G x G
  std::int64_t head_dim = 64;           // vision hidden_size / num_heads
  double rope_theta = 10000.0;          // vision rotary base

  // Reads and validates the values from a vision config. Throws q3vl::Error(config)
  // naming the field if num_position_embeddings is not a perfect square,
  // head_dim is not a positive multiple of 4 (HF concatenates d/4 row and d/4
  // column frequencies twice), or spatial_merge_size is not positive.
  static GridTableParams from_config(const VisionConfig& vision);
};

// Bilinear taps of the position-embedding table for one h x w frame.
// Row-major [rows, 4]: taps into the flattened G*G table, in HF's order
// (r0,c0), (r0,c1), (r1,c0), (r1,c1); weights multiply pos_embed rows.
struct PosEmbedTaps {
  std::int64_t rows = 0;                // h * w
  std::vector<std::int64_t> indices;    // [rows, 4]
  std::vector<float> weights;           // [rows, 4]
};

// Vision rotary table for one h x w frame. Row-major [rows, head_dim]:
// [row angles (d/4) | col angles (d/4) | row angles | col angles].
struct VisionRotary {
  std::int64_t rows = 0;
  std::int64_t head_dim = 0;
  std::vector<float> cos;
  std::vector<float> sin;
};

// The vision rotary frequencies, [head_dim / 4]: inv_freq[k] = 1 / theta^(2k / (head_dim / 2))
// in float32 as HF computes them (compute_vision_rotary multiplies positions by these;
// the GenAI vision graph, builder/genai_vision_graph.h, stores them as a constant).
std::vector<float> vision_rotary_inv_freq(const GridTableParams& params);

// Throws q3vl::Error(shape) unless h, w > 0 and both are multiples of the merge size.
PosEmbedTaps compute_pos_embed_taps(std::int64_t h, std::int64_t w, const GridTableParams& params);
VisionRotary compute_vision_rotary(std::int64_t h, std::int64_t w, const GridTableParams& params);

// (row, col) of merge-block row `index` in an h x w frame (w a multiple of m).
struct PatchCoord {
  std::int64_t row = 0;
  std::int64_t col = 0;
};
PatchCoord merge_block_coord(std::int64_t index, std::int64_t w, std::int64_t merge_size);

// One attention segment: one image, or one temporal group of a video.
struct VisionSegment {
  std::size_t item = 0;            // index into the grids passed to layout_segments
  std::int64_t frame = 0;          // temporal group within the item, 0 .. t-1
  std::int64_t h = 0;              // patch grid of the segment
  std::int64_t w = 0;
  std::int64_t patch_offset = 0;   // first row in the concatenated pixel_values
  std::int64_t token_offset = 0;   // first row in the concatenated merged tokens

  std::int64_t num_patches() const { return h * w; }
};

// Segments of grids given in request order (pixel_values rows concatenated in the
// same order, as HF's processor does). Throws q3vl::Error(shape) naming the grid
// if t < 1 or h, w are not positive multiples of the merge size.
std::vector<VisionSegment> layout_segments(std::span<const GridTHW> grids,
                                           std::int64_t spatial_merge_size);

// Segments of equal (h, w), which one vision-graph call can run as [S, L, ...].
// Groups are ordered by their first segment; segments keep request order inside a group.
struct SegmentGroup {
  std::int64_t h = 0;
  std::int64_t w = 0;
  std::vector<std::size_t> segments;  // indices into the layout_segments result
};
std::vector<SegmentGroup> group_segments_by_size(std::span<const VisionSegment> segments);

}  // namespace q3vl::vision
