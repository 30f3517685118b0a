// q3vl.Bf16Linear: y = x W^T (+ bias) with W and x rounded to bfloat16 and the products
// summed in float32.
//
// What it is for: float layers whose error int8 cannot carry, at twice fp32's arithmetic
// rate. The vision encoder's qkv projection is one: its error passes through the softmax,
// and int8 weights or activations there miss the vision accuracy bounds
// (builder/vision_layers.cpp). bf16 keeps float's range and 8 significant bits on both
// sides, and CPUs with AVX512-BF16 (vdpbf16ps: Zen 4, Cooper Lake, Sapphire Rapids) do
// 32 such products per instruction where fp32 FMA does 16. Half of fp32's bytes, too.
//
// ---- The math --------------------------------------------------------------------
//     bf16(v) = v rounded to the nearest value with 8 significant bits, ties to even
//               (NaN stays NaN): the top 16 bits of the float after rounding
//     y[m, n] = bias[n] + Σ_k bf16(x[m, k]) · bf16(W[n, k])
// Each product is exact in float32 (8 x 8 significant bits); only the float sums round,
// so the paths differ only in summation order.
//
// ---- The weight layout (what the builder writes and ONNX Runtime memory-maps) ---------
// N is padded to tiles of 16 rows (kTileRows, zero rows), K to an even count (a zero
// column): P = ceil(K / 2) pairs of inputs. weight bf16 [n_tiles, P, 16, 2]:
//     element (t, p, r, j) = bf16(W[16t + r, 2p + j])
// so the 64 bytes of (t, p) hold, in dword r, row r's pair (k = 2p, 2p + 1): exactly one
// vdpbf16ps operand against the broadcast pair of one activation row.
//
// Thread-safety: everything here is a pure function of its arguments.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

inline constexpr const char* kBf16LinearOp = "Bf16Linear";

inline std::uint16_t to_bf16(float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<std::uint16_t>(bits >> 16);
}

inline float from_bf16(std::uint16_t value) {
  const std::uint32_t bits = static_cast<std::uint32_t>(value) << 16;
  float f = 0.0f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

struct Bf16LinearShape {
  std::int64_t n = 0;  // output features
  std::int64_t k = 0;  // input features

  std::int64_t n_tiles() const { return (n + kTileRows - 1) / kTileRows; }
  std::int64_t k_pairs() const { return (k + 1) / 2; }
  std::int64_t weight_count() const { return n_tiles() * k_pairs() * kTileRows * 2; }
};

// Throws q3vl::Error(usage) naming `where` unless n and k are positive.
void validate(const Bf16LinearShape& shape, const char* where);

// W [n, k] row-major -> the layout above (weight_count() values, bf16 bits).
void pack_bf16(const Bf16LinearShape& shape, const float* w, std::uint16_t* out);

// A packed weight, viewed (non-owning).
struct Bf16WeightsView {
  Bf16LinearShape shape;
  const std::uint16_t* weight = nullptr;  // bf16 [n_tiles, k_pairs, 16, 2]
};

// Which code multiplies, chosen from dispatch.h's active ISA: avx512vnni -> avx512bf16
// when the CPU has AVX512-BF16 (vdpbf16ps), else avx2 (the bf16 values widened to
// float32, FMA); avx2 -> avx2; scalar -> scalar.
enum class Bf16Path { scalar, avx2, avx512bf16 };
const char* to_string(Bf16Path path);
Bf16Path active_bf16_path();

// y [m, n] = x [m, k] W^T (+ bias [n] when non-null) on active_bf16_path().
// Preconditions: x holds m*k floats, y m*n; validate(w.shape) holds. Never throws.
void bf16_linear(const Bf16WeightsView& w, const float* x, std::int64_t m, const float* bias, float* y,
                 const Parallelism& parallel = {});

}  // namespace q3vl::kernels
