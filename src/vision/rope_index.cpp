#include "vision/rope_index.h"

#include <algorithm>
#include <string>

#include "q3vl/error.h"

namespace q3vl::vision {
namespace {

enum class TokenKind { text, image, video };

// One vision span: a grid of merged tokens placed at the running position.
struct SpanGrid {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t tokens() const { return rows * cols; }
};

std::vector<SpanGrid> split_into_spans(std::span<const GridTHW> grids, std::int64_t merge,
                                       const char* kind) {
  std::vector<SpanGrid> spans;
  for (const GridTHW& grid : grids) {
    if (grid.t <= 0 || grid.h <= 0 || grid.w <= 0 || grid.h % merge != 0 || grid.w % merge != 0) {
      throw_error(ErrorKind::shape, "", std::string(kind) + "_grid_thw",
                  "positive t and h, w divisible by spatial_merge_size " + std::to_string(merge),
                  "(" + std::to_string(grid.t) + ", " + std::to_string(grid.h) + ", " +
                      std::to_string(grid.w) + ")");
    }
    for (std::int64_t group = 0; group < grid.t; ++group) spans.push_back({grid.h / merge, grid.w / merge});
  }
  return spans;
}

}  // namespace

MropePositions compute_rope_index(std::span<const std::int64_t> input_ids,
                                  std::span<const GridTHW> image_grids,
                                  std::span<const GridTHW> video_grids,
                                  const RopeIndexTokens& tokens) {
  const std::int64_t length = static_cast<std::int64_t>(input_ids.size());
  const std::int64_t merge = tokens.spatial_merge_size;
  const auto image_spans = split_into_spans(image_grids, merge, "image");
  const auto video_spans = split_into_spans(video_grids, merge, "video");
  std::size_t next_image = 0;
  std::size_t next_video = 0;

  MropePositions result;
  result.length = length;
  result.ids.assign(static_cast<std::size_t>(3 * length), 0);
  auto set = [&](std::int64_t index, std::int64_t t, std::int64_t h, std::int64_t w) {
    result.ids[static_cast<std::size_t>(index)] = t;
    result.ids[static_cast<std::size_t>(length + index)] = h;
    result.ids[static_cast<std::size_t>(2 * length + index)] = w;
  };
  auto kind_of = [&](std::int64_t id) {
    if (id == tokens.image_token_id) return TokenKind::image;
    if (id == tokens.video_token_id) return TokenKind::video;
    return TokenKind::text;
  };

  std::int64_t position = 0;  // the running position: max position so far + 1
  std::int64_t max_position = -1;
  std::int64_t index = 0;
  while (index < length) {
    const TokenKind kind = kind_of(input_ids[static_cast<std::size_t>(index)]);
    if (kind == TokenKind::text) {
      set(index, position, position, position);
      max_position = position;
      ++position;
      ++index;
      continue;
    }
    // A run of pad tokens of one kind holds one or more whole spans.
    std::int64_t run_end = index;
    while (run_end < length && kind_of(input_ids[static_cast<std::size_t>(run_end)]) == kind) ++run_end;
    const auto& spans = kind == TokenKind::image ? image_spans : video_spans;
    std::size_t& next = kind == TokenKind::image ? next_image : next_video;
    const char* name = kind == TokenKind::image ? "image" : "video";
    while (index < run_end) {
      if (next >= spans.size()) {
        throw_error(ErrorKind::shape, "", "input_ids",
                    std::to_string(spans.size()) + " " + name + " span(s) as given by the grids",
                    "more " + std::string(name) + " pad tokens than the grids account for");
      }
      const SpanGrid span = spans[next++];
      if (index + span.tokens() > run_end) {
        throw_error(ErrorKind::shape, "", "input_ids",
                    std::to_string(span.tokens()) + " consecutive " + name + " pad tokens for span " +
                        std::to_string(next - 1),
                    std::to_string(run_end - index));
      }
      for (std::int64_t row = 0; row < span.rows; ++row) {
        for (std::int64_t col = 0; col < span.cols; ++col) {
          set(index++, position, position + row, position + col);
        }
      }
      max_position = std::max(max_position, position + std::max(span.rows, span.cols) - 1);
      position += std::max(span.rows, span.cols);
    }
  }
  if (next_image != image_spans.size() || next_video != video_spans.size()) {
    throw_error(ErrorKind::shape, "", "input_ids",
                std::to_string(image_spans.size()) + " image and " + std::to_string(video_spans.size()) +
                    " video span(s)",
                std::to_string(next_image) + " image and " + std::to_string(next_video) +
                    " video span(s) of pad tokens");
  }
  result.rope_delta = max_position + 1 - length;
  return result;
}

}  // namespace q3vl::vision
