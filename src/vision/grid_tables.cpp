#include "vision/grid_tables.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "q3vl/error.h"

namespace q3vl::vision {
namespace {

void check_frame(std::int64_t h, std::int64_t w, std::int64_t merge, const std::string& what) {
  if (h <= 0 || w <= 0 || h % merge != 0 || w % merge != 0) {
    throw_error(ErrorKind::shape, "vision grid", what,
                "h and w positive multiples of spatial_merge_size " + std::to_string(merge),
                "h=" + std::to_string(h) + " w=" + std::to_string(w));
  }
}

// Taps and weights along one axis, as transformers 5.23
// vision_utils._interpolation_axis_taps_weights (bilinear, align_corners=True,
// border padding) computes them in float32:
//   src = index * (side - 1) / max(size - 1, 1)      (float32 multiply, float32 divide)
//   taps = clamp(floor(src) + {0, 1}, 0, side - 1)
//   weight = max(1 - |(src - floor(src)) - offset|, 0)
// Mirroring the float32 operation order makes the weights bit-identical to HF's.
struct AxisTaps {
  std::int64_t tap[2];
  float weight[2];
};

AxisTaps axis_taps(std::int64_t index, std::int64_t size, std::int64_t side) {
  const float src = static_cast<float>(index) * static_cast<float>(side - 1) /
                    static_cast<float>(std::max<std::int64_t>(size - 1, 1));
  const float floor_src = std::floor(src);
  const float frac = src - floor_src;
  AxisTaps out{};
  for (int offset = 0; offset < 2; ++offset) {
    const auto raw = static_cast<std::int64_t>(floor_src) + offset;
    out.tap[offset] = std::clamp<std::int64_t>(raw, 0, side - 1);
    const float distance = std::fabs(frac - static_cast<float>(offset));
    out.weight[offset] = std::max(1.0f - distance, 0.0f);
  }
  return out;
}

}  // namespace

GridTableParams GridTableParams::from_config(const VisionConfig& vision) {
  GridTableParams params;
  if (vision.spatial_merge_size <= 0) {
    throw_error(ErrorKind::config, "config.json", "vision_config.spatial_merge_size",
                "positive integer", std::to_string(vision.spatial_merge_size));
  }
  params.spatial_merge_size = vision.spatial_merge_size;
  const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(
      static_cast<double>(vision.num_position_embeddings))));
  if (vision.num_position_embeddings <= 0 || side * side != vision.num_position_embeddings) {
    throw_error(ErrorKind::config, "config.json", "vision_config.num_position_embeddings",
                "a positive perfect square", std::to_string(vision.num_position_embeddings));
  }
  params.num_grid_per_side = side;
  if (vision.num_heads <= 0 || vision.hidden_size % vision.num_heads != 0 ||
      vision.head_dim() % 4 != 0 || vision.head_dim() <= 0) {
    throw_error(ErrorKind::config, "config.json", "vision_config.hidden_size",
                "hidden_size / num_heads a positive multiple of 4 (2-D rotary halves)",
                std::to_string(vision.hidden_size) + " / " + std::to_string(vision.num_heads));
  }
  params.head_dim = vision.head_dim();
  if (!(vision.rope_theta > 0.0)) {
    throw_error(ErrorKind::config, "config.json", "vision_config.rope_parameters.rope_theta",
                "positive number", std::to_string(vision.rope_theta));
  }
  params.rope_theta = vision.rope_theta;
  return params;
}

PatchCoord merge_block_coord(std::int64_t index, std::int64_t w, std::int64_t merge_size) {
  const std::int64_t blocks_w = w / merge_size;
  const std::int64_t in_col = index % merge_size;
  const std::int64_t in_row = (index / merge_size) % merge_size;
  const std::int64_t block_col = (index / (merge_size * merge_size)) % blocks_w;
  const std::int64_t block_row = index / (merge_size * merge_size * blocks_w);
  return {block_row * merge_size + in_row, block_col * merge_size + in_col};
}

PosEmbedTaps compute_pos_embed_taps(std::int64_t h, std::int64_t w, const GridTableParams& params) {
  check_frame(h, w, params.spatial_merge_size, "pos_embed taps");
  const std::int64_t side = params.num_grid_per_side;
  PosEmbedTaps out;
  out.rows = h * w;
  out.indices.resize(static_cast<std::size_t>(out.rows * 4));
  out.weights.resize(static_cast<std::size_t>(out.rows * 4));
  for (std::int64_t r = 0; r < out.rows; ++r) {
    const PatchCoord pc = merge_block_coord(r, w, params.spatial_merge_size);
    const AxisTaps ty = axis_taps(pc.row, h, side);
    const AxisTaps tx = axis_taps(pc.col, w, side);
    for (int a = 0; a < 2; ++a) {
      for (int b = 0; b < 2; ++b) {
        const auto k = static_cast<std::size_t>(r * 4 + a * 2 + b);
        out.indices[k] = ty.tap[a] * side + tx.tap[b];
        out.weights[k] = ty.weight[a] * tx.weight[b];
      }
    }
  }
  return out;
}

// transformers 5.23 Qwen3VLVisionRotaryEmbedding, in float32:
//   inv_freq[k] = 1 / theta^((2k) / s), s = head_dim / 2, k < s / 2
// pow is evaluated in double and rounded once (torch's float kernel is within 1 ulp of that).
std::vector<float> vision_rotary_inv_freq(const GridTableParams& params) {
  const std::int64_t spatial_dim = params.head_dim / 2;
  const std::int64_t quarter = params.head_dim / 4;
  std::vector<float> inv_freq(static_cast<std::size_t>(quarter));
  const auto theta = static_cast<float>(params.rope_theta);
  for (std::int64_t k = 0; k < quarter; ++k) {
    const float exponent = static_cast<float>(2 * k) / static_cast<float>(spatial_dim);
    const auto base_pow = static_cast<float>(std::pow(static_cast<double>(theta),
                                                      static_cast<double>(exponent)));
    inv_freq[static_cast<std::size_t>(k)] = 1.0f / base_pow;
  }
  return inv_freq;
}

// angle = float(pos) * inv_freq[k]; cos/sin of the float32 angle, evaluated in double
// and rounded once.
VisionRotary compute_vision_rotary(std::int64_t h, std::int64_t w, const GridTableParams& params) {
  check_frame(h, w, params.spatial_merge_size, "vision rotary");
  const std::int64_t d = params.head_dim;
  const std::int64_t spatial_dim = d / 2;
  const std::int64_t quarter = d / 4;
  const std::vector<float> inv_freq = vision_rotary_inv_freq(params);
  VisionRotary out;
  out.rows = h * w;
  out.head_dim = d;
  out.cos.resize(static_cast<std::size_t>(out.rows * d));
  out.sin.resize(static_cast<std::size_t>(out.rows * d));
  for (std::int64_t r = 0; r < out.rows; ++r) {
    const PatchCoord pc = merge_block_coord(r, w, params.spatial_merge_size);
    float* cos_row = out.cos.data() + r * d;
    float* sin_row = out.sin.data() + r * d;
    for (std::int64_t k = 0; k < quarter; ++k) {
      const float inv = inv_freq[static_cast<std::size_t>(k)];
      const float angle_row = static_cast<float>(pc.row) * inv;
      const float angle_col = static_cast<float>(pc.col) * inv;
      const auto c_row = static_cast<float>(std::cos(static_cast<double>(angle_row)));
      const auto s_row = static_cast<float>(std::sin(static_cast<double>(angle_row)));
      const auto c_col = static_cast<float>(std::cos(static_cast<double>(angle_col)));
      const auto s_col = static_cast<float>(std::sin(static_cast<double>(angle_col)));
      for (std::int64_t half = 0; half < 2; ++half) {
        const std::int64_t base = half * spatial_dim;
        cos_row[base + k] = c_row;
        sin_row[base + k] = s_row;
        cos_row[base + quarter + k] = c_col;
        sin_row[base + quarter + k] = s_col;
      }
    }
  }
  return out;
}

std::vector<VisionSegment> layout_segments(std::span<const GridTHW> grids,
                                           std::int64_t spatial_merge_size) {
  std::vector<VisionSegment> segments;
  std::int64_t patch_offset = 0;
  const std::int64_t unit = spatial_merge_size * spatial_merge_size;
  for (std::size_t i = 0; i < grids.size(); ++i) {
    const GridTHW& g = grids[i];
    const std::string what = "grid_thw[" + std::to_string(i) + "]";
    if (g.t < 1) {
      throw_error(ErrorKind::shape, "vision grid", what, "t >= 1", "t=" + std::to_string(g.t));
    }
    check_frame(g.h, g.w, spatial_merge_size, what);
    for (std::int64_t f = 0; f < g.t; ++f) {
      VisionSegment s;
      s.item = i;
      s.frame = f;
      s.h = g.h;
      s.w = g.w;
      s.patch_offset = patch_offset;
      s.token_offset = patch_offset / unit;
      segments.push_back(s);
      patch_offset += g.h * g.w;
    }
  }
  return segments;
}

std::vector<SegmentGroup> group_segments_by_size(std::span<const VisionSegment> segments) {
  std::vector<SegmentGroup> groups;
  std::map<std::pair<std::int64_t, std::int64_t>, std::size_t> by_size;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto key = std::make_pair(segments[i].h, segments[i].w);
    auto [it, inserted] = by_size.emplace(key, groups.size());
    if (inserted) groups.push_back(SegmentGroup{key.first, key.second, {}});
    groups[it->second].segments.push_back(i);
  }
  return groups;
}

}  // namespace q3vl::vision
