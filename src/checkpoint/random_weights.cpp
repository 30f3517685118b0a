#include "checkpoint/random_weights.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "io/dtype.h"

namespace q3vl::checkpoint {
namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
std::uint64_t splitmix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t hash = 0xCBF29CE484222325ull;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

// Sum of four 16-bit uniforms, centred: an integer in [-131070, 131070].
std::int64_t centred_irwin_hall(std::uint64_t key, std::uint64_t index) {
  const std::uint64_t word = splitmix64(key + (index + 1) * kGolden);
  const std::uint64_t sum = (word & 0xFFFF) + ((word >> 16) & 0xFFFF) + ((word >> 32) & 0xFFFF) +
                            (word >> 48);
  return static_cast<std::int64_t>(sum) - 131070;
}

// Standard deviation of the centred sum: sqrt((2^32 - 1) / 3).
double irwin_hall_sigma() { return std::sqrt(4294967295.0 / 3.0); }

}  // namespace

std::uint64_t tensor_stream_key(std::uint64_t seed, std::string_view name) {
  return splitmix64(splitmix64(seed) ^ fnv1a64(name));
}

float standard_value(std::uint64_t key, std::uint64_t index) {
  return static_cast<float>(static_cast<double>(centred_irwin_hall(key, index)) *
                            (1.0 / irwin_hall_sigma()));
}

void fill_bf16(const WeightSpec& spec, std::uint64_t seed, std::uint64_t first,
               std::span<std::uint16_t> out) {
  const std::uint64_t key = tensor_stream_key(seed, spec.name);
  const double scale = spec.std / irwin_hall_sigma();
  const double offset = spec.init == Init::one_plus ? 1.0 : 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double centred = static_cast<double>(centred_irwin_hall(key, first + i)) * scale;
    out[i] = io::f32_to_bf16(static_cast<float>(offset + centred));
  }
}

void fill_bf16_parallel(const WeightSpec& spec, std::uint64_t seed, std::uint64_t first,
                        std::span<std::uint16_t> out, unsigned threads) {
  // Below this a thread costs more than it saves.
  constexpr std::size_t kMinPerThread = 1 << 16;
  const std::size_t workers = std::max<std::size_t>(
      1, std::min<std::size_t>(threads, out.size() / kMinPerThread));
  if (workers == 1) {
    fill_bf16(spec, seed, first, out);
    return;
  }
  const std::size_t per = (out.size() + workers - 1) / workers;
  std::vector<std::jthread> pool;
  pool.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) {
    const std::size_t begin = std::min(out.size(), w * per);
    const std::size_t count = std::min(out.size() - begin, per);
    pool.emplace_back([&spec, seed, first, begin, count, out] {
      fill_bf16(spec, seed, first + begin, out.subspan(begin, count));
    });
  }
  fill_bf16(spec, seed, first, out.subspan(0, std::min(per, out.size())));
}

}  // namespace q3vl::checkpoint
