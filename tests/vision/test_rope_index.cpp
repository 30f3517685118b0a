// MRoPE position ids against the worked examples of docs/reference/qwen3vl.md §8.2
// (hand-derived from HF's get_rope_index); golden parity is in the runtime tests.
#include <gtest/gtest.h>

#include <vector>

#include "q3vl/error.h"
#include "vision/rope_index.h"

namespace q3vl::vision {
namespace {

constexpr std::int64_t kImg = 151655;
constexpr std::int64_t kVid = 151656;
constexpr std::int64_t kStart = 151652;
constexpr std::int64_t kEnd = 151653;

struct Triple {
  std::int64_t t, h, w;
  bool operator==(const Triple&) const = default;
};

std::vector<Triple> triples(const MropePositions& p) {
  std::vector<Triple> out;
  for (std::int64_t i = 0; i < p.length; ++i) out.push_back({p.at(0, i), p.at(1, i), p.at(2, i)});
  return out;
}

TEST(RopeIndex, TextOnlyIsArangeOnAllRows) {
  const std::vector<std::int64_t> ids = {10, 11, 12, 13};
  const auto p = compute_rope_index(ids, {}, {}, {});
  EXPECT_EQ(triples(p), (std::vector<Triple>{{0, 0, 0}, {1, 1, 1}, {2, 2, 2}, {3, 3, 3}}));
  EXPECT_EQ(p.rope_delta, 0);
}

TEST(RopeIndex, ImageGridWorkedExample) {
  // A B C <vs> <img>x6 <ve> D E, image grid (1, 4, 6) -> 2 x 3 merged tokens.
  std::vector<std::int64_t> ids = {1, 2, 3, kStart};
  ids.insert(ids.end(), 6, kImg);
  ids.insert(ids.end(), {kEnd, 4, 5});
  const GridTHW grid{1, 4, 6};
  const auto p = compute_rope_index(ids, std::span(&grid, 1), {}, {});
  const std::vector<Triple> expected = {{0, 0, 0}, {1, 1, 1}, {2, 2, 2}, {3, 3, 3},
                                        {4, 4, 4}, {4, 4, 5}, {4, 4, 6}, {4, 5, 4},
                                        {4, 5, 5}, {4, 5, 6}, {7, 7, 7}, {8, 8, 8},
                                        {9, 9, 9}};
  EXPECT_EQ(triples(p), expected);
  EXPECT_EQ(p.rope_delta, 10 - 13);
  EXPECT_EQ(decode_position(13, p.rope_delta), 10);
}

TEST(RopeIndex, VideoTemporalGroupsAreSeparateSpans) {
  // A ts ts <vs> <vid>x4 <ve> ts ts <vs> <vid>x4 <ve> B, video grid (2, 4, 4).
  std::vector<std::int64_t> ids = {1, 7, 8, kStart, kVid, kVid, kVid, kVid, kEnd,
                                   7, 8, kStart, kVid, kVid, kVid, kVid, kEnd, 2};
  const GridTHW grid{2, 4, 4};
  const auto p = compute_rope_index(ids, {}, std::span(&grid, 1), {});
  const std::vector<Triple> expected = {
      {0, 0, 0},    {1, 1, 1},    {2, 2, 2},    {3, 3, 3},    {4, 4, 4},    {4, 4, 5},
      {4, 5, 4},    {4, 5, 5},    {6, 6, 6},    {7, 7, 7},    {8, 8, 8},    {9, 9, 9},
      {10, 10, 10}, {10, 10, 11}, {10, 11, 10}, {10, 11, 11}, {12, 12, 12}, {13, 13, 13}};
  EXPECT_EQ(triples(p), expected);
  EXPECT_EQ(p.rope_delta, 14 - 18);
}

TEST(RopeIndex, TallImageAdvancesByLongerSide) {
  // Grid (1, 8, 2) -> 4 x 1 merged tokens: next text position is start + 4.
  std::vector<std::int64_t> ids = {kStart, kImg, kImg, kImg, kImg, kEnd};
  const GridTHW grid{1, 8, 2};
  const auto p = compute_rope_index(ids, std::span(&grid, 1), {}, {});
  const std::vector<Triple> expected = {{0, 0, 0}, {1, 1, 1}, {1, 2, 1}, {1, 3, 1}, {1, 4, 1}, {5, 5, 5}};
  EXPECT_EQ(triples(p), expected);
  EXPECT_EQ(p.rope_delta, 6 - 6);
}

TEST(RopeIndex, MismatchedPadCountsAreErrors) {
  const GridTHW grid{1, 4, 4};  // 4 merged tokens
  const std::vector<std::int64_t> too_few = {kStart, kImg, kImg, kImg, kEnd};
  EXPECT_THROW(compute_rope_index(too_few, std::span(&grid, 1), {}, {}), Error);
  const std::vector<std::int64_t> no_pads = {kStart, kEnd};
  EXPECT_THROW(compute_rope_index(no_pads, std::span(&grid, 1), {}, {}), Error);
  const std::vector<std::int64_t> pads_without_grid = {kStart, kImg, kEnd};
  EXPECT_THROW(compute_rope_index(pads_without_grid, {}, {}, {}), Error);
  const GridTHW odd{1, 3, 4};
  EXPECT_THROW(compute_rope_index(no_pads, std::span(&odd, 1), {}, {}), Error);
}

}  // namespace
}  // namespace q3vl::vision
