#include "io/dtype.h"

#include <array>
#include <bit>

#include "q3vl/error.h"

namespace q3vl::io {
namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};

constexpr std::array<DTypeInfo, 10> kDTypes{{
    {DType::bf16, "BF16", 2},
    {DType::f16, "F16", 2},
    {DType::f32, "F32", 4},
    {DType::f64, "F64", 8},
    {DType::i64, "I64", 8},
    {DType::i32, "I32", 4},
    {DType::i16, "I16", 2},
    {DType::i8, "I8", 1},
    {DType::u8, "U8", 1},
    {DType::boolean, "BOOL", 1},
}};

// Dtypes the safetensors format defines (safetensors' Dtype enum) that q3vl
// does not read; naming one is "unsupported", not a corrupt file.
constexpr std::array<const char*, 10> kOtherSafetensorsDTypes{
    "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};

const DTypeInfo& info(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  throw_error(ErrorKind::usage, "", "dtype", "a q3vl::io::DType value",
              std::to_string(static_cast<int>(dtype)));
}

}  // namespace

std::size_t dtype_size(DType dtype) { return info(dtype).size; }

const char* dtype_name(DType dtype) { return info(dtype).name; }

bool is_float(DType dtype) {
  return dtype == DType::bf16 || dtype == DType::f16 || dtype == DType::f32 ||
         dtype == DType::f64;
}

DType parse_dtype(std::string_view name, const std::string& file, const std::string& tensor) {
  for (const auto& entry : kDTypes) {
    if (name == entry.name) return entry.dtype;
  }
  const std::string got = "\"" + std::string(name) + "\"";
  for (const char* other : kOtherSafetensorsDTypes) {
    if (name == other) {
      throw_error(ErrorKind::unsupported, file, tensor + ".dtype",
                  "one of BF16 F16 F32 F64 I64 I32 I16 I8 U8 BOOL", got);
    }
  }
  throw_error(ErrorKind::format, file, tensor + ".dtype",
              "a safetensors dtype (BF16 F16 F32 F64 I64 I32 I16 I8 U8 BOOL)", got);
}

float bf16_to_f32(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

// bfloat16 is the top half of a float32, so rounding is integer arithmetic on the
// bits: adding 0x7FFF plus the lowest kept bit carries into the kept half exactly
// when the dropped half is above one half, or equal to it with an odd kept half.
// The carry also turns the largest finite values into infinity, as it should.
// Same result as c10::BFloat16's round_to_nearest_even, including its NaN.
std::uint16_t f32_to_bf16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
  const std::uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<std::uint16_t>((bits + 0x7FFFu + lsb) >> 16);
}

float f16_to_f32(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  std::uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0x1F) {
    // Infinity, or NaN: keep the payload and set the quiet bit, as the x86 F16C
    // conversion torch's vectorised path uses does for a signalling NaN.
    const std::uint32_t quiet = mantissa != 0 ? 0x400000u : 0u;
    return std::bit_cast<float>(sign | 0x7F800000u | quiet | (mantissa << 13));
  }
  if (exponent != 0) {  // normal: rebias 15 -> 127
    return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  }
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal half (mantissa * 2^-24) is a normal float: shift the leading one
  // into the implicit-bit position, lowering the exponent once per shift.
  std::uint32_t float_exponent = 113;  // 2^-14 before normalising
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --float_exponent;
  }
  return std::bit_cast<float>(sign | (float_exponent << 23) | ((mantissa & 0x3FFu) << 13));
}

namespace {

// Shifts `value` right by `shift` (1..31) bits, rounding to nearest, ties to even.
std::uint32_t shift_right_rne(std::uint32_t value, unsigned shift) {
  const std::uint32_t kept = value >> shift;
  const std::uint32_t dropped = value & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  return kept + ((dropped > half || (dropped == half && (kept & 1u))) ? 1u : 0u);
}

}  // namespace

std::uint16_t f32_to_f16(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) {  // NaN: quiet it, keep the top payload bits
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  }
  // 65520 = 0x477FF000 lies halfway between 65504 (the largest half, odd mantissa)
  // and 65536, so it and everything above round to infinity.
  if (magnitude >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
  if (magnitude >= 0x38800000u) {  // >= 2^-14: a normal half
    // Rebias the exponent (127 -> 15) in place, then drop 13 mantissa bits; a
    // carry out of the mantissa correctly bumps the exponent.
    return static_cast<std::uint16_t>(sign | shift_right_rne(magnitude - (112u << 23), 13));
  }
  // 2^-25 is halfway between 0 and the smallest subnormal 2^-24: ties to even gives 0.
  if (magnitude <= 0x33000000u) return sign;
  // Subnormal half: value = (1.m * 2^23) * 2^(e-150) = k * 2^-24 with
  // k = (1.m * 2^23) >> (126 - e). A carry into 0x400 is the smallest normal, correctly.
  const std::uint32_t exponent = magnitude >> 23;
  const std::uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
  return static_cast<std::uint16_t>(sign | shift_right_rne(mantissa, 126u - exponent));
}

}  // namespace q3vl::io
