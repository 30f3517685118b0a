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

// Decode reads each weight matrix once, straight from DRAM, and one core's hardware
// prefetchers alone kept well under its share of the read bandwidth in flight (18.4 of
// 29-35 GB/s on the 2-vCPU Xeon VM). So the SIMD paths ask for every line twice ahead of
// use: into L2 kFarAhead bytes ahead (enough requests in flight to cover DRAM latency; L2
// tracks more outstanding misses than L1's fill buffers) and into L1 kNearAhead bytes
// ahead (so the loads hit L1); the scale and zero-point streams go into L2 the same
// distance ahead (prefetch_side). The 4b decode went from 10.6 tok/s with one L1 prefetch
// 4 KB ahead to 12.2 (bench/peers/results/2026-12-06-4b-two-level-prefetch.md). Near
// distances of 0.5-2 KB and far ones of 6-8 KB were within noise of each other.
// Prefetches never fault, so running past the end of a buffer is harmless, and the
// addresses are formed as integers so no out-of-range pointer exists.
inline constexpr std::uintptr_t kNearAhead = 1024;
inline constexpr std::uintptr_t kFarAhead = 6144;
inline void prefetch_ahead(const std::uint8_t* block, std::int64_t bytes) {
  const auto base = reinterpret_cast<std::uintptr_t>(block);
  for (std::int64_t line = 0; line < bytes; line += 64) {
    const auto at = base + static_cast<std::uintptr_t>(line);
    __builtin_prefetch(reinterpret_cast<const void*>(at + kNearAhead), 0, 3);  // prefetcht0
    __builtin_prefetch(reinterpret_cast<const void*>(at + kFarAhead), 0, 2);   // prefetcht1
  }
}
// A side stream that advances `side_bytes` for every `main_bytes` of the main one (a
// tile-block's scales or zero points) goes into L2 at the main stream's far distance:
// side_ahead() is that distance in the side stream's bytes. It divides, so callers work
// it out once per tile, not per block. One request per block; the ones that land on a
// line already asked for cost a cache lookup.
inline std::uintptr_t side_ahead(std::int64_t side_bytes, std::int64_t main_bytes) {
  return static_cast<std::uintptr_t>((static_cast<std::int64_t>(kFarAhead) + main_bytes - 1) / main_bytes * side_bytes);
}
inline void prefetch_side(const void* side_block, std::uintptr_t ahead) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(side_block) + ahead), 0, 2);
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
