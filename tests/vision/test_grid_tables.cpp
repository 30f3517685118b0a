// Grid tables for the vision graph: hand-worked examples from the spec
// (docs/reference/qwen3vl.md §5.2-5.4) and a few rows of HF's own output.
#include "vision/grid_tables.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "q3vl/error.h"

namespace q3vl::vision {
namespace {

GridTableParams params_2b() {
  GridTableParams p;
  p.spatial_merge_size = 2;
  p.num_grid_per_side = 48;
  p.head_dim = 64;
  p.rope_theta = 10000.0;
  return p;
}

// Row of raster patch (i, j) in merge-block order for an h x w frame, m = 2.
std::int64_t merge_row(std::int64_t i, std::int64_t j, std::int64_t w) {
  return (((i / 2) * (w / 2) + j / 2) * 2 + i % 2) * 2 + j % 2;
}

TEST(GridTables, MergeBlockOrderMatchesSpecExample) {
  // Spec §5.3, grid (1, 4, 6).
  const std::vector<std::pair<int, int>> expected = {
      {0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3},
      {0, 4}, {0, 5}, {1, 4}, {1, 5}, {2, 0}, {2, 1}, {3, 0}, {3, 1}};
  for (std::size_t r = 0; r < expected.size(); ++r) {
    const PatchCoord pc = merge_block_coord(static_cast<std::int64_t>(r), 6, 2);
    EXPECT_EQ(pc.row, expected[r].first) << "row " << r;
    EXPECT_EQ(pc.col, expected[r].second) << "row " << r;
  }
}

TEST(GridTables, PosEmbedTapsMatchSpecWorkedExample) {
  // Spec §5.2 worked example h=4, w=6 (raster (i, j) -> taps, weights).
  struct Case {
    int i, j;
    std::int64_t taps[4];
    double weights[4];
  };
  const Case cases[] = {
      {0, 0, {0, 1, 48, 49}, {1, 0, 0, 0}},
      {0, 1, {9, 10, 57, 58}, {0.6, 0.4, 0, 0}},
      {0, 2, {18, 19, 66, 67}, {0.2, 0.8, 0, 0}},
      {0, 3, {28, 29, 76, 77}, {0.8, 0.2, 0, 0}},
      {0, 4, {37, 38, 85, 86}, {0.4, 0.6, 0, 0}},
      {0, 5, {47, 47, 95, 95}, {1, 0, 0, 0}},
      {1, 0, {720, 721, 768, 769}, {1.0 / 3, 0, 2.0 / 3, 0}},
  };
  // The spec's weights are exact; HF computes the source coordinate in float32, so
  // a weight may differ by half an ulp of a coordinate below 48: 2^-19 ~ 1.9e-6.
  const double tolerance = 0x1p-19;
  const PosEmbedTaps taps = compute_pos_embed_taps(4, 6, params_2b());
  ASSERT_EQ(taps.rows, 24);
  for (const Case& c : cases) {
    const std::int64_t r = merge_row(c.i, c.j, 6);
    for (int k = 0; k < 4; ++k) {
      EXPECT_EQ(taps.indices[static_cast<std::size_t>(r * 4 + k)], c.taps[k])
          << "patch (" << c.i << "," << c.j << ") tap " << k;
      EXPECT_NEAR(taps.weights[static_cast<std::size_t>(r * 4 + k)], c.weights[k], tolerance)
          << "patch (" << c.i << "," << c.j << ") weight " << k;
    }
  }
  // The last patch sits on the table's corner (47, 47): all taps clamp to 2303.
  const std::int64_t last = merge_row(3, 5, 6);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(taps.indices[static_cast<std::size_t>(last * 4 + k)], 2303);
  EXPECT_EQ(taps.weights[static_cast<std::size_t>(last * 4)], 1.0f);
}

TEST(GridTables, PosEmbedWeightsAreBitIdenticalToTransformers) {
  // Rows of transformers 5.23 vision_utils.get_vision_interpolation_indices_and_weights(
  //   grid_thw=[[1, 38, 54]], num_grid_per_side=48, mode="bilinear", align_corners=True,
  //   spatial_merge_size=2), printed with float.hex() (merge-block row order).
  struct Row {
    std::int64_t r;
    std::int64_t taps[4];
    float weights[4];
  };
  const Row rows[] = {
      {3, {48, 49, 96, 97}, {0x1.525fcep-4f, 0x1.4b532ap-1f, 0x1.f54b88p-6f, 0x1.ead9fep-3f}},
      {777, {825, 826, 873, 874}, {0x1.b2752ep-5f, 0x1.4e32b4p-3f, 0x1.89b9b4p-3f, 0x1.2edd92p-1f}},
      {1001, {1069, 1070, 1117, 1118}, {0x1.826aacp-4f, 0x1.4e32a6p-5f, 0x1.3521cap-1f, 0x1.0b5b6cp-2f}},
      {2051, {2303, 2303, 2303, 2303}, {1.0f, 0.0f, 0.0f, 0.0f}},
  };
  const PosEmbedTaps taps = compute_pos_embed_taps(38, 54, params_2b());
  for (const Row& row : rows) {
    for (int k = 0; k < 4; ++k) {
      const auto at = static_cast<std::size_t>(row.r * 4 + k);
      EXPECT_EQ(taps.indices[at], row.taps[k]) << "row " << row.r << " tap " << k;
      EXPECT_EQ(taps.weights[at], row.weights[k]) << "row " << row.r << " weight " << k;
    }
  }
}

TEST(GridTables, WeightsSumToOneAndTapsStayInTable) {
  for (auto [h, w] : {std::pair<int, int>{2, 2}, {16, 16}, {68, 120}, {100, 2}, {96, 96}}) {
    const PosEmbedTaps taps = compute_pos_embed_taps(h, w, params_2b());
    ASSERT_EQ(taps.rows, h * w);
    for (std::int64_t r = 0; r < taps.rows; ++r) {
      double sum = 0;
      for (int k = 0; k < 4; ++k) {
        const auto at = static_cast<std::size_t>(r * 4 + k);
        sum += taps.weights[at];
        EXPECT_GE(taps.indices[at], 0);
        EXPECT_LT(taps.indices[at], 48 * 48);
      }
      EXPECT_NEAR(sum, 1.0, 1e-6) << h << "x" << w << " row " << r;
    }
  }
}

TEST(GridTables, RotaryHandWorked) {
  // head_dim 8: s = 4, inv_freq = [1, 10000^(-1/2) = 0.01]. Layout per row:
  // [cos(row*f0), cos(row*f1), cos(col*f0), cos(col*f1)] twice.
  GridTableParams p = params_2b();
  p.head_dim = 8;
  const VisionRotary rot = compute_vision_rotary(4, 6, p);
  ASSERT_EQ(rot.rows, 24);
  ASSERT_EQ(rot.head_dim, 8);
  const std::int64_t r = merge_row(3, 5, 6);  // patch (row 3, col 5)
  const double angles[4] = {3.0, 0.03, 5.0, 0.05};
  for (int half = 0; half < 2; ++half) {
    for (int k = 0; k < 4; ++k) {
      const auto at = static_cast<std::size_t>(r * 8 + half * 4 + k);
      EXPECT_NEAR(rot.cos[at], std::cos(angles[k]), 1e-6) << "k " << k;
      EXPECT_NEAR(rot.sin[at], std::sin(angles[k]), 1e-6) << "k " << k;
    }
  }
  // Patch (0, 0) is the identity rotation.
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(rot.cos[static_cast<std::size_t>(k)], 1.0f);
    EXPECT_EQ(rot.sin[static_cast<std::size_t>(k)], 0.0f);
  }
}

TEST(GridTables, Rotary2bDimsFrequencies) {
  // head_dim 64: 16 frequencies 10000^(-2k/32); check patch (row 7, col 2) of a 16 x 16 frame.
  const VisionRotary rot = compute_vision_rotary(16, 16, params_2b());
  const std::int64_t r = merge_row(7, 2, 16);
  for (int k = 0; k < 16; ++k) {
    const double inv = std::pow(10000.0, -2.0 * k / 32.0);
    EXPECT_NEAR(rot.cos[static_cast<std::size_t>(r * 64 + k)], std::cos(7 * inv), 2e-6) << k;
    EXPECT_NEAR(rot.sin[static_cast<std::size_t>(r * 64 + 16 + k)], std::sin(2 * inv), 2e-6) << k;
    EXPECT_EQ(rot.cos[static_cast<std::size_t>(r * 64 + 32 + k)],
              rot.cos[static_cast<std::size_t>(r * 64 + k)]);
  }
}

TEST(GridTables, SegmentsAndGroups) {
  // Two 4x6 images around a video of 3 temporal groups of 8x8, then a 4x6 image.
  const std::vector<GridTHW> grids = {{1, 4, 6}, {3, 8, 8}, {1, 4, 6}};
  const auto segs = layout_segments(grids, 2);
  ASSERT_EQ(segs.size(), 5u);
  const std::int64_t patch_offsets[] = {0, 24, 88, 152, 216};
  for (std::size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].patch_offset, patch_offsets[i]) << i;
    EXPECT_EQ(segs[i].token_offset, patch_offsets[i] / 4) << i;
  }
  EXPECT_EQ(segs[2].item, 1u);
  EXPECT_EQ(segs[2].frame, 1);
  EXPECT_EQ(segs[4].item, 2u);
  EXPECT_EQ(segs[4].num_patches(), 24);

  const auto groups = group_segments_by_size(segs);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].h, 4);
  EXPECT_EQ(groups[0].segments, (std::vector<std::size_t>{0, 4}));
  EXPECT_EQ(groups[1].w, 8);
  EXPECT_EQ(groups[1].segments, (std::vector<std::size_t>{1, 2, 3}));
}

TEST(GridTables, RejectsBadGrids) {
  EXPECT_THROW(compute_pos_embed_taps(3, 4, params_2b()), Error);
  EXPECT_THROW(compute_vision_rotary(4, 0, params_2b()), Error);
  const std::vector<GridTHW> bad = {{0, 4, 4}};
  EXPECT_THROW(layout_segments(bad, 2), Error);
  try {
    const std::vector<GridTHW> odd = {{1, 4, 4}, {1, 4, 5}};
    layout_segments(odd, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grid_thw[1]"), std::string::npos) << e.what();
  }
}

TEST(GridTables, ParamsFromConfig) {
  VisionConfig v;
  v.hidden_size = 1024;
  v.num_heads = 16;
  v.spatial_merge_size = 2;
  v.num_position_embeddings = 2304;
  v.rope_theta = 10000.0;
  const GridTableParams p = GridTableParams::from_config(v);
  EXPECT_EQ(p.num_grid_per_side, 48);
  EXPECT_EQ(p.head_dim, 64);
  v.num_position_embeddings = 2300;
  EXPECT_THROW(GridTableParams::from_config(v), Error);
  v.num_position_embeddings = 2304;
  v.hidden_size = 16 * 18;  // head_dim 18 is not a multiple of 4
  EXPECT_THROW(GridTableParams::from_config(v), Error);
}

}  // namespace
}  // namespace q3vl::vision
