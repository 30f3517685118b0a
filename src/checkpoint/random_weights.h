// The project's own seeded generator for checkpoint weights: the same (seed,
// tensor name) gives the same bf16 bytes on every machine, compiler, thread
// count and generation order.
//
// How: every tensor has its own counter-based stream. Its key is
// splitmix64(splitmix64(seed) ^ fnv1a64(name)); element i takes the 64-bit word
// splitmix64(key + (i + 1) * 0x9E3779B97F4A7C15) (SplitMix64's increment) and
// splits it into four 16-bit uniforms u0..u3. Their sum S is Irwin-Hall
// distributed: mean 131070, variance (2^32 - 1) / 3, bounded at +-3.46 sigma and
// close to Gaussian. The value is (S - 131070) * (std / sqrt((2^32 - 1) / 3)),
// plus 1 for Init::one_plus, in double, then rounded to float and to bf16
// (round to nearest even). Only integer ops and IEEE-exact double ops (+, *, /,
// sqrt) are used, never libm transcendental functions whose last bits differ
// between libm versions; the layer is compiled with -ffp-contract=off so no FMA
// changes a rounding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "checkpoint/weight_layout.h"

namespace q3vl::checkpoint {

// The key of a tensor's stream.
std::uint64_t tensor_stream_key(std::uint64_t seed, std::string_view name);

// Element `index` of the stream `key` as a float with mean 0 and standard deviation 1.
float standard_value(std::uint64_t key, std::uint64_t index);

// Writes elements [first, first + out.size()) of `spec`'s tensor as bf16 bits.
// Pure: the result depends only on (seed, spec, first, out.size()).
void fill_bf16(const WeightSpec& spec, std::uint64_t seed, std::uint64_t first,
               std::span<std::uint16_t> out);

// Same, split into contiguous ranges over `threads` std::threads (1 = this thread).
// The bytes do not depend on `threads`.
void fill_bf16_parallel(const WeightSpec& spec, std::uint64_t seed, std::uint64_t first,
                        std::span<std::uint16_t> out, unsigned threads);

}  // namespace q3vl::checkpoint
