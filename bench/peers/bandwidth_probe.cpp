// bandwidth_probe: main-memory read bandwidth with T threads (default 2), as one JSON line.
//   bandwidth_probe [--mib N] [--passes N] [--threads N] [--method stream|plain]
// Decode speed of a memory-bound LLM is roughly bandwidth / weight bytes per token, and on
// the shared VMs this project runs on the bandwidth drifts minute to minute
// (bench/peers/targets.md), so bench/peers/compare.py runs this before and after every round and
// reports decode speed next to it. Each thread first-touches and then repeatedly reads its
// own slice of a buffer far larger than the last-level cache; a pass is timed from a common
// start (barrier) until the slowest thread finishes, so the figure is what all threads get
// together. Prints {"threads", "bytes", "method", "passes_gbps": [...], "best_gbps", "median_gbps"}.
//
// --method stream (the default) reads as a streaming kernel does: 64-byte AVX-512 loads when
// the CPU has them (32-byte AVX2 loads, else 8-byte words) and the software prefetch q3vl's
// kernels use (src/kernels/dispatch.h: every line into L2 6 KB ahead and into L1 1 KB ahead;
// a single L1 prefetch 4 KB ahead reads the same here, 33.4-33.9 GB/s either way on the
// 2-vCPU Xeon VM). That is the ceiling a decode kernel can reach. --method plain is the
// loop this probe used before 2026-12-06: 8-byte loads, no prefetch. On the 2-vCPU Xeon VM,
// minutes apart, plain read 15.5-22.5 GB/s and stream 29-35 GB/s, so a "fraction of the
// plain probe" above 100 % was possible.
#include <immintrin.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::size_t mib = 1024;
  int passes = 7;
  int threads = 2;
  bool plain = false;
};

// src/kernels/dispatch.h's distances, in bytes.
constexpr std::uintptr_t kNearAhead = 1024, kFarAhead = 6144;

// Four independent accumulators so the adds do not form one dependency chain that would
// cap the read rate below what the memory system delivers.
std::uint64_t sum_plain(const std::uint64_t* data, std::size_t count) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    a += data[i];
    b += data[i + 1];
    c += data[i + 2];
    d += data[i + 3];
  }
  for (; i < count; ++i) a += data[i];
  return a + b + c + d;
}

// The prefetches are issued from integer addresses: past the slice's end they name memory
// that may not exist, which a prefetch tolerates and a pointer must not.
inline void prefetch_word(const std::uint64_t* data, std::size_t i) {
  const auto at = reinterpret_cast<std::uintptr_t>(data + i);
  __builtin_prefetch(reinterpret_cast<const void*>(at + kNearAhead), 0, 3);
  __builtin_prefetch(reinterpret_cast<const void*>(at + kFarAhead), 0, 2);
}

__attribute__((target("avx512f"))) std::uint64_t sum_stream_avx512(const std::uint64_t* data, std::size_t count) {
  __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 16 <= count; i += 16) {  // two cache lines per iteration
    prefetch_word(data, i);
    prefetch_word(data, i + 8);
    a = _mm512_add_epi64(a, _mm512_loadu_si512(data + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(data + i + 8));
  }
  alignas(64) std::uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(a, b));
  std::uint64_t sum = 0;
  for (std::uint64_t v : lanes) sum += v;
  for (; i < count; ++i) sum += data[i];
  return sum;
}

__attribute__((target("avx2"))) std::uint64_t sum_stream_avx2(const std::uint64_t* data, std::size_t count) {
  __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {  // one cache line per iteration
    prefetch_word(data, i);
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i + 4)));
  }
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(a, b));
  std::uint64_t sum = 0;
  for (std::uint64_t v : lanes) sum += v;
  for (; i < count; ++i) sum += data[i];
  return sum;
}

std::uint64_t sum_stream_words(const std::uint64_t* data, std::size_t count) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    prefetch_word(data, i);
    a += data[i] + data[i + 4];
    b += data[i + 1] + data[i + 5];
    c += data[i + 2] + data[i + 6];
    d += data[i + 3] + data[i + 7];
  }
  for (; i < count; ++i) a += data[i];
  return a + b + c + d;
}

using SumFn = std::uint64_t (*)(const std::uint64_t*, std::size_t);

SumFn stream_reader() {
  if (__builtin_cpu_supports("avx512f")) return sum_stream_avx512;
  if (__builtin_cpu_supports("avx2")) return sum_stream_avx2;
  return sum_stream_words;
}

bool parse(int argc, char** argv, Options& options) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--method") {
      const std::string method = argv[i + 1];
      if (method != "stream" && method != "plain") return false;
      options.plain = method == "plain";
      continue;
    }
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (value <= 0) return false;
    if (flag == "--mib") {
      options.mib = static_cast<std::size_t>(value);
    } else if (flag == "--passes") {
      options.passes = static_cast<int>(value);
    } else if (flag == "--threads") {
      options.threads = static_cast<int>(value);
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse(argc, argv, options)) {
    std::fprintf(stderr, "usage: bandwidth_probe [--mib N] [--passes N] [--threads N] (all positive) [--method stream|plain]\n");
    return 2;
  }
  const std::size_t words = options.mib * 1024 * 1024 / sizeof(std::uint64_t);
  const std::size_t per_thread = words / static_cast<std::size_t>(options.threads);
  std::vector<std::uint64_t> buffer(words);  // zeroed here; each thread rewrites its slice below
  std::vector<std::uint64_t> sums(static_cast<std::size_t>(options.threads), 0);
  std::vector<double> pass_seconds;
  using Clock = std::chrono::steady_clock;
  Clock::time_point start;

  // Barrier completion runs on one thread: it stamps the start of a pass, and at the end of a
  // pass records its length, so a pass lasts until the slowest thread is done.
  int phase = 0;
  std::barrier sync(options.threads, [&]() noexcept {
    const auto now = Clock::now();
    if (phase % 2 == 1) pass_seconds.push_back(std::chrono::duration<double>(now - start).count());
    start = now;
    ++phase;
  });

  const SumFn read = options.plain ? sum_plain : stream_reader();
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t* slice = buffer.data() + static_cast<std::size_t>(t) * per_thread;
      for (std::size_t i = 0; i < per_thread; ++i) slice[i] = i ^ static_cast<std::uint64_t>(t);
      for (int p = 0; p < options.passes; ++p) {
        sync.arrive_and_wait();  // common start
        sums[static_cast<std::size_t>(t)] += read(slice, per_thread);
        sync.arrive_and_wait();  // common end
      }
    });
  }
  for (auto& thread : threads) thread.join();

  const double bytes = static_cast<double>(per_thread * static_cast<std::size_t>(options.threads) * sizeof(std::uint64_t));
  std::vector<double> gbps;
  for (double s : pass_seconds) gbps.push_back(bytes / s / 1e9);
  std::vector<double> sorted = gbps;
  std::sort(sorted.begin(), sorted.end());
  std::uint64_t checksum = 0;
  for (auto s : sums) checksum += s;

  std::printf("{\"threads\": %d, \"bytes\": %.0f, \"method\": \"%s\", \"passes_gbps\": [", options.threads, bytes,
              options.plain ? "plain" : "stream");
  for (std::size_t i = 0; i < gbps.size(); ++i) std::printf("%s%.2f", i ? ", " : "", gbps[i]);
  std::printf("], \"best_gbps\": %.2f, \"median_gbps\": %.2f, \"checksum\": %llu}\n", sorted.back(),
              sorted[sorted.size() / 2], static_cast<unsigned long long>(checksum));
  return 0;
}
