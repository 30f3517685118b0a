// Which instruction-set path runs q3vl.QuantLinear, chosen once at run time.
//
// Order of precedence: force_isa() (tests), then the environment variable
// Q3VL_KERNEL_ISA=scalar|avx2|avx512vnni, then the best path this CPU supports
// (CPUID via __builtin_cpu_supports). Every path computes the same int32 block sums
// (quant_linear.h); they differ only in float rounding.
//
// Thread-safety: active_isa() and isa_kernels() are safe from any thread; force_isa() is
// for tests and must not race with running kernels.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

enum class Isa { scalar, avx2, avx512vnni };

const char* to_string(Isa isa);
// "scalar" / "avx2" / "avx512vnni"; nullopt otherwise.
std::optional<Isa> parse_isa(std::string_view text);
// Whether this CPU (and this build) can run `isa`.
bool isa_supported(Isa isa);

// The path quant_linear uses now. Throws q3vl::Error(config) naming Q3VL_KERNEL_ISA when
// the variable names an unknown or unsupported path (checked on first use).
Isa active_isa();
// Tests: use `isa` from now on (nullopt: back to the env var / CPUID choice). Throws
// q3vl::Error(unsupported) when this CPU cannot run it.
void force_isa(std::optional<Isa> isa);

// Where a tile's 16 accumulated outputs of one activation row go.
struct TileOutput {
  enum class Kind {
    linear,  // y[m, n] = acc[n] + bias[n] (bias may be null), n < w.shape.n
    swiglu,  // y[m, 8t + r] = silu(acc[r]) · acc[8 + r], 8t + r < width (quant_linear.h)
  };
  Kind kind = Kind::linear;
  float* y = nullptr;
  std::int64_t width = 0;  // y's row stride: N (linear) or I (swiglu)
  const float* bias = nullptr;
};

// The portable epilogue: writes row m of tile `tile` from its 16 accumulators `lanes`
// (bias not yet added). The scalar and AVX2 paths store through it.
void store_tile(const TileOutput& out, const float* lanes, std::int64_t tile, std::int64_t m);

// Decode reads each weight matrix once, straight from DRAM. On this project's machines the
// hardware prefetchers alone delivered a little over half of the read bandwidth to that
// stream (18.4 of 29-35 GB/s on the 2-vCPU Xeon VM), so the SIMD paths ask for the bytes
// kPrefetchAhead past the tile-block they are about to read. 4 KB measured best
// (2-6 KB within noise; 0.5 KB and 16 KB slower); the decode of the 4b preset went from
// 18.4 to 25 GB/s with it. Prefetches never fault, so running past the end of the weights
// is harmless, and the address is formed as an integer so no out-of-range pointer exists.
inline constexpr std::uintptr_t kPrefetchAhead = 4096;
inline void prefetch_ahead(const std::uint8_t* tile_block, std::int64_t bytes) {
  const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(tile_block) + kPrefetchAhead;
  for (std::int64_t line = 0; line < bytes; line += 64) {
    __builtin_prefetch(reinterpret_cast<const void*>(ahead + static_cast<std::uintptr_t>(line)));
  }
}

// One ISA's implementation of the two steps of quant_linear.
struct IsaKernels {
  // activation_quant.h's quantize_activation_rows.
  void (*quantize_rows)(const float* x, std::int64_t k, std::int64_t row_begin, std::int64_t row_end,
                        QuantizedActivations& out);
  // The 16 rows of tile `tile` for activation rows m in [m_begin, m_end), written as
  // `out` says.
  void (*tile_rows)(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile,
                    std::int64_t m_begin, std::int64_t m_end, const TileOutput& out);
};

const IsaKernels& isa_kernels(Isa isa);

// Per-ISA tables, each defined in its gemm_<isa>.cpp.
extern const IsaKernels kScalarKernels;
extern const IsaKernels kAvx2Kernels;
extern const IsaKernels kAvx512VnniKernels;

}  // namespace q3vl::kernels
