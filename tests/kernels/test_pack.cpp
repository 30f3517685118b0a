// The tile layout (src/kernels/quant_linear.h) byte by byte on a hand-worked case, and
// pack/unpack round trips against MatMulNBits' blockwise layout.
#include <gtest/gtest.h>

#include "io/dtype.h"
#include "kernels/pack.h"
#include "q3vl/error.h"
#include "quant_reference.h"

namespace q3vl::testing {
namespace {

TEST(Pack, HandWorkedInt4Layout) {
  // 2 rows, K = 40 (two blocks of 32, the second padded): code(n, k) = (n + k) % 16.
  kernels::BlockwiseMatrix m;
  m.shape = {2, 40, 4, 32};
  m.packed.assign(2 * 2 * 16, 0);
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 64; ++k) {
      const int code = k < 40 ? (n + k) % 16 : 8;
      m.packed[n * 32 + k / 2] |= static_cast<std::uint8_t>(code << (k % 2 * 4));
    }
  }
  m.scales = {0.5f, 0.25f, 1.0f, 2.0f};
  const kernels::PackedMatrix p = kernels::pack(m);
  ASSERT_EQ(p.weight.size(), 2u * 256u);  // 1 tile x 2 blocks x (16 rows x 32 codes / 2)
  // Block 0, group 1 (k 8..15), row 1 (dword 1), byte 2: k = 10 low, k = 14 high.
  EXPECT_EQ(p.weight[64 + 4 + 2], ((1 + 10) % 16) | ((1 + 14) % 16) << 4);
  // Block 1, group 0, row 0, byte 3: k = 35 low, k = 39 high.
  EXPECT_EQ(p.weight[256 + 3], (35 % 16) | (39 % 16) << 4);
  // Padding rows 2..15 hold the symmetric zero point 8 in both nibbles.
  EXPECT_EQ(p.weight[5 * 4], 0x88);
  // Scales: [tile, block, row] in fp16; padding rows 0.
  EXPECT_EQ(io::f16_to_f32(p.scales[0]), 0.5f);
  EXPECT_EQ(io::f16_to_f32(p.scales[1]), 1.0f);
  EXPECT_EQ(io::f16_to_f32(p.scales[16]), 0.25f);
  EXPECT_EQ(io::f16_to_f32(p.scales[17]), 2.0f);
  EXPECT_EQ(p.scales[2], 0);
  EXPECT_TRUE(p.zero_points.empty());
}

TEST(Pack, HandWorkedInt8Layout) {
  kernels::BlockwiseMatrix m;
  m.shape = {3, 32, 8, 32};
  for (int n = 0; n < 3; ++n) {
    for (int k = 0; k < 32; ++k) m.packed.push_back(static_cast<std::uint8_t>(n * 40 + k));
  }
  m.scales = {1, 1, 1};
  m.zero_points = {3, 4, 5};
  const kernels::PackedMatrix p = kernels::pack(m);
  // Group 5 (k 20..23), row 2, byte 1: k = 21.
  EXPECT_EQ(p.weight[5 * 64 + 2 * 4 + 1], 2 * 40 + 21);
  EXPECT_EQ(p.zero_points[0], 3);
  EXPECT_EQ(p.zero_points[2], 5);
  EXPECT_EQ(p.zero_points[3], 128);  // padding row: symmetric zero point
}

// Codes for the 5- and 6-bit hand-worked cases: code(n, k) = (7n + 3k) % 2^bits, written
// LSB-first into each row's bit stream by hand (one row = K bits·K/8 bytes).
kernels::BlockwiseMatrix hand_worked_stream(int bits, std::int64_t n_rows) {
  kernels::BlockwiseMatrix m;
  m.shape = {n_rows, 32, bits, 32};
  m.packed.assign(static_cast<std::size_t>(n_rows * 4 * bits), 0);
  for (int n = 0; n < n_rows; ++n) {
    for (int k = 0; k < 32; ++k) {
      const int code = (7 * n + 3 * k) % (1 << bits);
      for (int bit = 0; bit < bits; ++bit) {
        const int at = k * bits + bit;
        m.packed[static_cast<std::size_t>(n * 4 * bits + at / 8)] |= static_cast<std::uint8_t>((code >> bit & 1) << at % 8);
      }
    }
  }
  m.scales.assign(static_cast<std::size_t>(n_rows), 1.0f);
  return m;
}

TEST(Pack, HandWorkedInt5Layout) {
  const kernels::PackedMatrix p = kernels::pack(hand_worked_stream(5, 2));
  ASSERT_EQ(p.weight.size(), 320u);  // 1 tile x 1 block x (256 nibble bytes + one 64-byte plane)
  // Row 1, k = 21: nibble vector i = 5 (group 2, high nibble), j = 1; code (7 + 63) % 32 = 6.
  // Row 1, k = 17: nibble vector 4 (group 2, low nibble), j = 1; code (7 + 51) % 32 = 26.
  EXPECT_EQ(p.weight[128 + 4 + 1], (26 & 15) | (6 & 15) << 4);
  // Plane byte 4·1 + 1: bit i = bit 4 of the code of k = 4i + 1 in row 1:
  // k = 1, 5, ..., 29 -> codes 10, 22, 2, 14, 26, 6, 18, 30 -> bit 4: 0 1 0 0 1 0 1 1.
  EXPECT_EQ(p.weight[256 + 5], 0b11010010);
  // Row 0, k = 0 .. 3 (codes 0, 3, 6, 9): the low nibbles of group 0's dword 0.
  EXPECT_EQ(p.weight[0], 0 | (12 & 15) << 4);  // k = 0 and k = 4 (code 12)
  EXPECT_EQ(p.weight[3], 9 | (21 & 15) << 4);  // k = 3 and k = 7 (code 21)
  // Padding rows: code 16 (the symmetric zero point): nibble 0, every plane bit set.
  EXPECT_EQ(p.weight[2 * 4], 0);
  EXPECT_EQ(p.weight[256 + 2 * 4], 0xFF);
}

TEST(Pack, HandWorkedInt6Layout) {
  const kernels::PackedMatrix p = kernels::pack(hand_worked_stream(6, 1));
  ASSERT_EQ(p.weight.size(), 384u);  // 256 nibble bytes + two 64-byte planes
  // Plane 0 (k 0..15), byte j = 2: bits 2i'..2i'+1 = bits 4..5 of the code of k = 4i' + 2:
  // k = 2, 6, 10, 14 -> codes 6, 18, 30, 42 -> high pairs 0, 1, 1, 2.
  EXPECT_EQ(p.weight[256 + 2], 0 | 1 << 2 | 1 << 4 | 2 << 6);
  // Plane 1 (k 16..31), byte j = 3: k = 19, 23, 27, 31 -> codes 57, 5, 17, 29 -> 3, 0, 1, 1.
  EXPECT_EQ(p.weight[320 + 3], 3 | 0 << 2 | 1 << 4 | 1 << 6);
  // Group 3, byte 3: k = 27 (code 17) low nibble, k = 31 (code 29) high nibble.
  EXPECT_EQ(p.weight[192 + 3], (17 & 15) | (29 & 15) << 4);
}

TEST(Pack, NlGridKeepsTheInt4LayoutAndRejectsZeroPoints) {
  kernels::BlockwiseMatrix m = hand_worked_stream(4, 3);
  m.shape.grid = kernels::WeightGrid::nl;
  kernels::BlockwiseMatrix uniform = m;
  uniform.shape.grid = kernels::WeightGrid::uniform;
  const kernels::PackedMatrix p = kernels::pack(m);
  EXPECT_EQ(p.weight, kernels::pack(uniform).weight);
  EXPECT_EQ(p.shape.grid, kernels::WeightGrid::nl);
  EXPECT_EQ(kernels::unpack(p).shape.grid, kernels::WeightGrid::nl);
  m.zero_points.assign(3, 0x88);
  try {
    kernels::pack(m);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero_points"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nl"), std::string::npos) << e.what();
  }
}

TEST(Pack, RoundTripsEveryFormat) {
  unsigned seed = 7;
  for (auto [bits, grid] : {std::pair{4, kernels::WeightGrid::uniform}, {5, kernels::WeightGrid::uniform},
                            {6, kernels::WeightGrid::uniform}, {8, kernels::WeightGrid::uniform},
                            {4, kernels::WeightGrid::nl}}) {
    for (bool symmetric : {true, false}) {
      if (grid == kernels::WeightGrid::nl && !symmetric) continue;
      for (std::int64_t block : {32, 64, 128}) {
        for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {17, 100}, {33, 256}, {5, 129}}) {
          const LinearCase c = make_case(1, n, k, bits, block, symmetric, false, seed++, grid);
          const kernels::BlockwiseMatrix back = kernels::unpack(kernels::pack(c.q));
          const std::string label = "bits=" + std::to_string(bits) + " grid=" + kernels::to_string(grid) +
                                    " block=" + std::to_string(block) + " N=" + std::to_string(n) +
                                    " K=" + std::to_string(k) + (symmetric ? " symmetric" : " asymmetric");
          EXPECT_EQ(back.packed, c.q.packed) << label;
          EXPECT_EQ(back.scales, c.q.scales) << label;
          EXPECT_EQ(back.zero_points, c.q.zero_points) << label;
        }
      }
    }
  }
}

TEST(Pack, RejectsBadShapes) {
  kernels::BlockwiseMatrix m;
  m.shape = {4, 64, 4, 16};  // block 16: MatMulNBits allows it, the kernel does not
  m.packed.assign(4 * 4 * 8, 0);
  m.scales.assign(16, 1.0f);
  EXPECT_THROW(kernels::pack(m), Error);
  for (int bits : {3, 7}) {
    m.shape = {4, 64, bits, 32};
    try {
      kernels::pack(m);
      FAIL() << "expected an error for bits " << bits;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bits: expected 4, 5, 6 or 8, got " + std::to_string(bits)),
                std::string::npos)
          << e.what();
    }
  }
  m.shape = {4, 64, 6, 32, kernels::WeightGrid::nl};
  try {
    kernels::pack(m);
    FAIL() << "expected an error for grid nl with bits 6";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grid"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("\"nl\" needs bits 4"), std::string::npos) << e.what();
  }
  m.shape = {4, 64, 4, 32};
  m.scales.assign(7, 1.0f);  // expected 4 x 2
  try {
    kernels::pack(m);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("scales"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("8 values"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace q3vl::testing
