// Element types of checkpoint tensors and the conversions q3vl needs between them.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace q3vl::io {

enum class DType { bf16, f16, f32, f64, i64, i32, i16, i8, u8, boolean };

// Bytes per element (BOOL is one byte, as in safetensors).
std::size_t dtype_size(DType dtype);
// safetensors' spelling: "BF16", "F16", "F32", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* dtype_name(DType dtype);
// True for BF16, F16, F32, F64.
bool is_float(DType dtype);
// Inverse of dtype_name. Throws q3vl::Error naming `file` and `tensor`:
// kind unsupported for a dtype safetensors defines but q3vl does not read
// (F8_E4M3, U32, ...), kind format for any other string.
DType parse_dtype(std::string_view name, const std::string& file, const std::string& tensor);

// IEEE binary16 / bfloat16 <-> binary32, bit-exact with torch's (vectorised) CPU
// tensor conversions. Widening is exact for every number, subnormals included;
// bf16 NaNs keep their bits, f16 NaNs keep sign and payload and become quiet.
// Narrowing rounds to nearest, ties to even; values beyond the largest finite
// result become infinity; subnormal results are produced, not flushed. NaN stays
// NaN: f32_to_bf16 returns torch's canonical 0x7FC0 for every NaN, f32_to_f16
// keeps the sign and the top payload bits and sets the quiet bit.
float bf16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_bf16(float value);
float f16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_f16(float value);

}  // namespace q3vl::io
