// dtype names and sizes, and the bf16 / f16 <-> f32 conversions: hand-worked bit
// patterns (ties, overflow, subnormals, NaN), exhaustive round trips, and a sweep
// that must match torch bit for bit.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <vector>

#include "core/sha256.h"
#include "io/dtype.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

float from_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }
std::uint32_t bits_of(float value) { return std::bit_cast<std::uint32_t>(value); }

TEST(DType, NamesSizesAndParsing) {
  const std::vector<std::pair<DType, std::size_t>> all{
      {DType::bf16, 2}, {DType::f16, 2}, {DType::f32, 4}, {DType::f64, 8}, {DType::i64, 8},
      {DType::i32, 4},  {DType::i16, 2}, {DType::i8, 1},  {DType::u8, 1},  {DType::boolean, 1}};
  for (const auto& [dtype, size] : all) {
    EXPECT_EQ(dtype_size(dtype), size) << dtype_name(dtype);
    EXPECT_EQ(parse_dtype(dtype_name(dtype), "f", "t"), dtype);
  }
  EXPECT_STREQ(dtype_name(DType::boolean), "BOOL");
  EXPECT_STREQ(dtype_name(DType::bf16), "BF16");
  EXPECT_TRUE(is_float(DType::bf16));
  EXPECT_FALSE(is_float(DType::i64));
  try {
    parse_dtype("f32", "x.safetensors", "w");  // case matters, as in the format
    ADD_FAILURE() << "lower-case dtype accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format);
    EXPECT_STREQ(e.what(),
                 "x.safetensors: w.dtype: expected a safetensors dtype (BF16 F16 F32 F64 I64 I32 "
                 "I16 I8 U8 BOOL), got \"f32\"");
  }
  try {
    parse_dtype("U32", "x.safetensors", "w");
    ADD_FAILURE() << "U32 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
  }
}

// Hand-worked: bf16 keeps the top 16 bits of a float; round on the low 16.
TEST(DType, Bf16FromF32HandWorked) {
  struct Case {
    std::uint32_t f32;
    std::uint16_t bf16;
    const char* why;
  };
  const Case cases[] = {
      {0x3F800000, 0x3F80, "1.0 exact"},
      {0x3F808000, 0x3F80, "tie, kept half even: stays"},
      {0x3F818000, 0x3F82, "tie, kept half odd: rounds up"},
      {0x3F808001, 0x3F81, "just above the tie"},
      {0x3F807FFF, 0x3F80, "just below the tie"},
      {0x40490FDB, 0x4049, "pi"},
      {0x3FFF8000, 0x4000, "tie with carry into the exponent"},
      {0x7F7FFFFF, 0x7F80, "largest float rounds to +inf"},
      {0x7F7F7FFF, 0x7F7F, "stays finite below the tie"},
      {0x7F800000, 0x7F80, "+inf"},
      {0xFF800000, 0xFF80, "-inf"},
      {0x80000000, 0x8000, "-0"},
      {0x00000001, 0x0000, "smallest float subnormal rounds to 0"},
      {0x00008000, 0x0000, "subnormal tie to even 0"},
      {0x00018000, 0x0002, "subnormal tie to even 2"},
      {0x007FFFFF, 0x0080, "largest subnormal rounds to the smallest normal"},
      {0x7FC00000, 0x7FC0, "quiet NaN"},
      {0xFFC00001, 0x7FC0, "negative NaN: torch's canonical 0x7FC0"},
      {0x7F800001, 0x7FC0, "NaN with low payload: must not round to inf"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(f32_to_bf16(from_bits(c.f32)), c.bf16) << c.why << std::hex << " 0x" << c.f32;
  }
  EXPECT_EQ(bits_of(bf16_to_f32(0x4049)), 0x40490000u);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
  EXPECT_EQ(bits_of(bf16_to_f32(0x0001)), 0x00010000u);  // a float subnormal
  EXPECT_EQ(bits_of(bf16_to_f32(0xFF81)), 0xFF810000u);  // NaN payload kept
}

// Hand-worked: half has 5 exponent bits (bias 15) and 10 mantissa bits.
TEST(DType, F16FromF32HandWorked) {
  struct Case {
    std::uint32_t f32;
    std::uint16_t f16;
    const char* why;
  };
  const Case cases[] = {
      {0x3F800000, 0x3C00, "1.0"},
      {0xC0000000, 0xC000, "-2.0"},
      {0x3DCCCCCD, 0x2E66, "0.1 (0x3DCCCCCD) rounds down"},
      {0x3F801000, 0x3C00, "1 + 2^-11: tie, stays even"},
      {0x3F803000, 0x3C02, "1 + 3*2^-11: tie, rounds up to even"},
      {0x3F801001, 0x3C01, "just above the tie"},
      {0x477FE000, 0x7BFF, "65504, largest half"},
      {0x477FEFFF, 0x7BFF, "just below 65520 stays finite"},
      {0x477FF000, 0x7C00, "65520: tie with odd 0x7BFF rounds to inf"},
      {0x7F7FFFFF, 0x7C00, "largest float overflows to inf"},
      {0x7F800000, 0x7C00, "+inf"},
      {0xFF800000, 0xFC00, "-inf"},
      {0x38800000, 0x0400, "2^-14, smallest normal half"},
      {0x387FC000, 0x03FF, "largest subnormal half"},
      {0x387FE000, 0x0400, "1023.5 * 2^-24: tie, odd 1023 rounds up into the normals"},
      {0x33800000, 0x0001, "2^-24, smallest subnormal half"},
      {0x33000000, 0x0000, "2^-25: tie between 0 and 2^-24, to even 0"},
      {0x33000001, 0x0001, "just above 2^-25"},
      {0xB3000000, 0x8000, "-2^-25 gives -0"},
      {0x33C00000, 0x0002, "1.5 * 2^-24: tie, to even 2"},
      {0x34200000, 0x0002, "2.5 * 2^-24: tie, to even 2"},
      {0x00000001, 0x0000, "float subnormal underflows to 0"},
      {0x80000000, 0x8000, "-0"},
      {0x7FC00000, 0x7E00, "quiet NaN"},
      {0xFFC00000, 0xFE00, "negative quiet NaN keeps its sign"},
      {0x7F800001, 0x7E00, "NaN with low payload: quieted, not inf"},
      {0x7FBFE000, 0x7FFF, "NaN: top payload bits kept, quiet bit set"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(f32_to_f16(from_bits(c.f32)), c.f16) << c.why << std::hex << " 0x" << c.f32;
  }
  const std::pair<std::uint16_t, std::uint32_t> widen[] = {
      {0x3C00, 0x3F800000}, {0x0001, 0x33800000}, {0x03FF, 0x387FC000}, {0x0400, 0x38800000},
      {0x7BFF, 0x477FE000}, {0x7C00, 0x7F800000}, {0xFC00, 0xFF800000}, {0x7E00, 0x7FC00000},
      {0x7C01, 0x7FC02000}, {0x8000, 0x80000000}, {0x8001, 0xB3800000}, {0x3555, 0x3EAAA000},
  };
  for (const auto& [half, single] : widen) {
    EXPECT_EQ(bits_of(f16_to_f32(half)), single) << std::hex << "0x" << half;
  }
}

// Every half / bfloat16 value widens exactly, so narrowing it again is the identity.
TEST(DType, ExhaustiveRoundTrip) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const bool bf16_nan = (bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0;
    const bool f16_nan = (bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0;
    if (!bf16_nan) {
      ASSERT_EQ(f32_to_bf16(bf16_to_f32(bits)), bits) << h;
    }
    if (!f16_nan) {
      ASSERT_EQ(f32_to_f16(f16_to_f32(bits)), bits) << h;
    } else {
      // NaN stays NaN with its sign and (quieted) payload.
      ASSERT_EQ(f32_to_f16(f16_to_f32(bits)), bits | 0x0200) << h;
    }
  }
}

// The float32 bit patterns of the torch sweep (NaN excluded: torch's vectorised
// f32->f16 path and its scalar path treat NaN payloads differently). The widening
// sweeps cover all 65536 inputs, NaNs included (there torch quiets f16 sNaNs).
//   2^18 patterns k * 0x9E3779B1 mod 2^32 spread over all signs and exponents;
//   for each top half h, h:7FFF, h:8000, h:8001 (around every bf16 tie);
//   the exact midpoint above every positive normal half, and its negative;
//   the midpoints (m + 0.5) * 2^-24 between consecutive subnormal halves.
std::vector<std::uint32_t> sweep_inputs() {
  std::vector<std::uint32_t> all;
  for (std::uint64_t k = 0; k < (1u << 18); ++k) {
    all.push_back(static_cast<std::uint32_t>((k * 0x9E3779B1u) & 0xFFFFFFFFu));
  }
  for (std::uint32_t h = 0; h < 65536; ++h) {
    for (const std::uint32_t low : {0x7FFFu, 0x8000u, 0x8001u}) all.push_back((h << 16) | low);
  }
  for (std::uint32_t n = 0x400; n < 0x7C00; ++n) {
    const std::uint32_t normal = (((n >> 10) + 112) << 23) | ((n & 0x3FF) << 13);
    all.push_back(normal + 0x1000);
    all.push_back((normal + 0x1000) | 0x80000000u);
  }
  for (std::uint32_t m = 0; m < 1024; ++m) {
    all.push_back(bits_of(static_cast<float>((m + 0.5) * 0x1p-24)));
  }
  std::vector<std::uint32_t> inputs;
  for (const std::uint32_t bits : all) {
    if ((bits & 0x7F800000u) != 0x7F800000u || (bits & 0x7FFFFFu) == 0) inputs.push_back(bits);
  }
  return inputs;
}

template <typename T>
std::string sha256_of(const std::vector<T>& values) {
  return core::sha256_hex(std::as_bytes(std::span(values)));
}

// The hashes are of torch 2.14.1's outputs (little-endian arrays), made once with
// the reference venv by running this Python (the sweep's inputs, rebuilt in numpy):
//
//   import hashlib, numpy as np, torch
//   k = np.arange(1 << 18, dtype=np.uint64)
//   a = ((k * 0x9E3779B1) & 0xFFFFFFFF).astype(np.uint32)
//   h = np.arange(65536, dtype=np.uint32)
//   b = np.stack([(h << 16) | t for t in (0x7FFF, 0x8000, 0x8001)], axis=1).reshape(-1)
//   n = np.arange(0x400, 0x7C00, dtype=np.uint32)
//   normal = (((n >> 10) + 112) << 23) | ((n & 0x3FF) << 13)
//   c = np.stack([normal + 0x1000, (normal + 0x1000) | 0x80000000], axis=1).reshape(-1)
//   d = ((np.arange(1024.0) + 0.5) * 2.0**-24).astype(np.float32).view(np.uint32)
//   bits = np.concatenate([a, b, c, d]).astype(np.uint32)
//   bits = bits[~(((bits & 0x7F800000) == 0x7F800000) & ((bits & 0x7FFFFF) != 0))]
//   sha = lambda x: hashlib.sha256(x.tobytes()).hexdigest()
//   f = torch.from_numpy(bits.view(np.float32).copy())
//   print(bits.size, sha(bits))
//   print(sha(f.to(torch.bfloat16).view(torch.int16).numpy()))
//   print(sha(f.to(torch.float16).view(torch.int16).numpy()))
//   all16 = torch.from_numpy(np.arange(65536, dtype=np.uint16).view(np.int16).copy())
//   print(sha(all16.view(torch.bfloat16).float().numpy()))
//   print(sha(all16.view(torch.float16).float().numpy()))
TEST(DType, MatchesTorchOnASweep) {
  const auto inputs = sweep_inputs();
  ASSERT_EQ(inputs.size(), 519423u);
  ASSERT_EQ(sha256_of(inputs), "d54fd65f34bafa94963b63302eea727b229970529b0b24f40941fcb91d146049");
  std::vector<std::uint16_t> bf16, f16;
  for (const std::uint32_t bits : inputs) {
    bf16.push_back(f32_to_bf16(from_bits(bits)));
    f16.push_back(f32_to_f16(from_bits(bits)));
  }
  EXPECT_EQ(sha256_of(bf16), "95112e8e916addedd6d4f0023708f254da98eaa10eadcae3075d1b241c6fe58a");
  EXPECT_EQ(sha256_of(f16), "b994f9ba8250f330107d51f784a77b51f3f21e7c7ca9320694eac88c45085586");

  std::vector<std::uint32_t> from_bf16, from_f16;
  for (std::uint32_t h = 0; h < 65536; ++h) {
    from_bf16.push_back(bits_of(bf16_to_f32(static_cast<std::uint16_t>(h))));
    from_f16.push_back(bits_of(f16_to_f32(static_cast<std::uint16_t>(h))));
  }
  EXPECT_EQ(sha256_of(from_bf16), "9207d7eb28680a098c73dbe536d1ff7b94311dc417b9a385e0af6660683e93ca");
  EXPECT_EQ(sha256_of(from_f16), "b636c5716ff84d972782faf02d0194cb8951526bea4cc487082feb47b1860ddf");
}

}  // namespace
}  // namespace q3vl::io
