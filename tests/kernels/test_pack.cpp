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

TEST(Pack, RoundTripsEveryFormat) {
  unsigned seed = 7;
  for (int bits : {4, 8}) {
    for (bool symmetric : {true, false}) {
      for (std::int64_t block : {32, 64, 128}) {
        for (auto [n, k] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {17, 100}, {33, 256}, {5, 129}}) {
          const LinearCase c = make_case(1, n, k, bits, block, symmetric, false, seed++);
          const kernels::BlockwiseMatrix back = kernels::unpack(kernels::pack(c.q));
          const std::string label = "bits=" + std::to_string(bits) + " block=" + std::to_string(block) +
                                    " N=" + std::to_string(n) + " K=" + std::to_string(k) +
                                    (symmetric ? " symmetric" : " asymmetric");
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
