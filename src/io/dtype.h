// Element types of checkpoint tensors and the conversions q3vl needs between them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace q3vl::io {

enum class DType { bf16, f16, f32, f64, i64, i32, i16, i8, u8, boolean };

// Bytes per element.
std::size_t dtype_size(DType dtype);
// safetensors' spelling: "BF16", "F16", "F32", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* dtype_name(DType dtype);
// Inverse of dtype_name; throws q3vl::Error(format) naming `file` and `tensor` for an unknown name.
DType parse_dtype(std::string_view name, const std::string& file, const std::string& tensor);

// IEEE half / bfloat16 <-> float. float->half/bf16 round to nearest, ties to even
// (as torch does); NaN stays NaN.
float bf16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_bf16(float value);
float f16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_f16(float value);

}  // namespace q3vl::io
