// bandwidth_probe: main-memory read bandwidth with T threads (default 2), as one JSON line.
//   bandwidth_probe [--mib N] [--passes N] [--threads N]
// Decode speed of a memory-bound LLM is roughly bandwidth / weight bytes per token, and on
// the shared VMs this project runs on the bandwidth drifts 33-70 GB/s minute to minute
// (bench/peers/targets.md), so bench/peers/compare.py runs this before and after every round and
// reports decode speed next to it. Each thread first-touches and then repeatedly reads its
// own slice of a buffer far larger than the last-level cache; a pass is timed from a common
// start (barrier) until the slowest thread finishes, so the figure is what all threads get
// together. Prints {"threads", "bytes", "passes_gbps": [...], "best_gbps", "median_gbps"}.
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
};

// Four independent accumulators so the adds do not form one dependency chain that would
// cap the read rate below what the memory system delivers.
std::uint64_t sum_slice(const std::uint64_t* data, std::size_t count) {
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

bool parse(int argc, char** argv, Options& options) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
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
    std::fprintf(stderr, "usage: bandwidth_probe [--mib N] [--passes N] [--threads N] (all positive)\n");
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

  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t* slice = buffer.data() + static_cast<std::size_t>(t) * per_thread;
      for (std::size_t i = 0; i < per_thread; ++i) slice[i] = i ^ static_cast<std::uint64_t>(t);
      for (int p = 0; p < options.passes; ++p) {
        sync.arrive_and_wait();  // common start
        sums[static_cast<std::size_t>(t)] += sum_slice(slice, per_thread);
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

  std::printf("{\"threads\": %d, \"bytes\": %.0f, \"passes_gbps\": [", options.threads, bytes);
  for (std::size_t i = 0; i < gbps.size(); ++i) std::printf("%s%.2f", i ? ", " : "", gbps[i]);
  std::printf("], \"best_gbps\": %.2f, \"median_gbps\": %.2f, \"checksum\": %llu}\n", sorted.back(),
              sorted[sorted.size() / 2], static_cast<unsigned long long>(checksum));
  return 0;
}
