// bench_decode_batch PKG [PAST] [STEPS] [THREADS]: time of one decoder call of the
// Scheduler's decode step (q3vl::Scheduler, src/runtime/scheduler.cpp) at batch
// B = 1, 2, 4, 8, every row attending over PAST cached tokens (default 512), median of
// STEPS calls (default 12) after 2 warm-up calls. A row the Scheduler pads in (a slot that
// is not generating) costs what a generating row costs, so t(B) / t(1) is also the price
// of padding. Prints a Markdown table with the machine's load; asserts nothing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "q3vl/model.h"
#include "runtime/decoder_runner.h"
#include "runtime/kv_pool.h"
#include "runtime/model_parts.h"

namespace {

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PACKAGE [PAST] [STEPS] [THREADS]\n", argv[0]);
    return 2;
  }
  const std::int64_t past = argc > 2 ? std::atoll(argv[2]) : 512;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 12;
  q3vl::ModelOptions mo;
  mo.intra_op_threads = argc > 4 ? std::atoi(argv[4]) : 0;
  mo.allow_spinning = false;  // shared machine (see ModelOptions::allow_spinning)
  try {
    const auto model = q3vl::Model::load(argv[1], mo);
    const auto& parts = model->parts();
    const auto& m = parts.manifest;
    constexpr std::int64_t kMaxBatch = 8;
    q3vl::runtime::KvPool pool(m.num_hidden_layers, m.num_key_value_heads, m.head_dim, kMaxBatch, past + 1);
    q3vl::runtime::DecoderRunner runner(parts);
    std::mt19937 gen(1);
    std::uniform_int_distribution<std::int64_t> token(0, 150000);
    std::printf("package %s, hidden %lld, layers %lld, past %lld tokens per row, %d threads, load before: %s\n\n",
                argv[1], static_cast<long long>(m.hidden_size), static_cast<long long>(m.num_hidden_layers),
                static_cast<long long>(past), mo.intra_op_threads, load_average().c_str());
    std::printf("| B | step ms (median) | min | ms per token | tokens/s | vs B=1 |\n|---|---|---|---|---|---|\n");
    double t1 = 0.0;
    for (const std::int64_t b : {1, 2, 4, 8}) {
      std::vector<std::int64_t> ids(static_cast<std::size_t>(b)), lengths(static_cast<std::size_t>(b), past),
          positions(static_cast<std::size_t>(3 * b), past);
      std::vector<float> embeds;
      std::vector<double> times;
      for (int s = 0; s < steps + 2; ++s) {
        for (auto& id : ids) id = token(gen);
        runner.embed(ids, embeds);
        const auto start = std::chrono::steady_clock::now();
        runner.run(pool.range(0, b), q3vl::runtime::DecoderBatch{b, embeds, {}, positions, lengths});
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (s >= 2) times.push_back(ms);
      }
      std::sort(times.begin(), times.end());
      const double median = times[times.size() / 2];
      if (b == 1) t1 = median;
      std::printf("| %lld | %.1f | %.1f | %.1f | %.1f | %.2fx |\n", static_cast<long long>(b), median, times.front(),
                  median / static_cast<double>(b), 1000.0 * static_cast<double>(b) / median, median / t1);
    }
    std::printf("\nload after: %s\n", load_average().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
