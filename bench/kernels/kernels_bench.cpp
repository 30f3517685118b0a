// kernels_bench: q3vl.QuantLinear vs MatMulNBits (levels 0 and 4) on 4B-shaped layers.
//
//   kernels_bench [--threads N] [--seconds S] [--layers qkv,o,gate_up,down,lm_head] [--rows 1,128,512]
//
// Each variant is a one-node graph in its own ONNX Runtime session (the same threads and
// session options q3vl uses), fed the same random x; the weights are the same int4 codes
// (block 32, symmetric, random). Figures: mean ms per call over >= S seconds after one
// warm-up call; GB/s = the weight bytes the kernel must read per call / time (q3vl: its
// initializers, 0.5625 byte/weight; MatMulNBits: its initializers, 0.625 byte/weight —
// level 4 reads more after its prepack, so its figure is a lower bound); GOPS = 2·M·N·K / time.
// The machine is shared, so each row also gives the process CPU time per call: with
// --threads 1 that is the kernel's own cost, little affected by other processes (wall
// time is not). The machine (CPU model, load average) is printed; nothing is asserted.
#include <onnxruntime_cxx_api.h>

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "builder/graph.h"
#include "builder/quantize.h"
#include "kernels/dispatch.h"
#include "kernels/pack.h"
#include "runtime/ort_session.h"

namespace {

using namespace q3vl;

struct Layer {
  const char* name;
  std::int64_t n, k;
};
// Qwen3-VL 4B text decoder (hidden 2560, 32 q heads + 8 kv heads of 128, MLP 9728).
const Layer kLayers[] = {{"qkv", 6144, 2560}, {"o", 2560, 4096}, {"gate_up", 19456, 2560}, {"down", 2560, 9728}};

using bench_util::cpu_seconds;
using bench_util::load_average;
using bench_util::parse_list;
using bench_util::read_line;

struct Variant {
  const char* label;
  std::filesystem::path path;
  double weight_bytes;
};

std::vector<Variant> write_graphs(const std::filesystem::path& dir, const Layer& layer) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(layer.n * layer.k));
  for (auto& v : w) v = normal(rng);
  builder::QuantOptions o;
  o.method = builder::QuantMethod::rtn;
  auto q = builder::quantize_blockwise(w, layer.n, layer.k, o);
  w = {};
  const kernels::PackedMatrix p = kernels::pack(kernels::BlockwiseMatrix{{layer.n, layer.k, 4, 32}, q.packed, q.scales, {}});
  const auto& s = p.shape;
  std::vector<Variant> out;
  auto one = [&](const char* label, auto&& body, double bytes) {
    const auto file = dir / (std::string(layer.name) + "_" + label + ".onnx");
    builder::Graph g(label, dir / (file.filename().string() + ".data"));
    const builder::Value x = g.input("x", builder::DType::f32, {"rows", layer.k});
    g.output(body(g, x), "y", builder::DType::f32, {"rows", layer.n});
    g.save(file);
    out.push_back({label, file, bytes});
  };
  one("q3vl", [&](builder::Graph& g, const builder::Value& x) {
    return g.op("q3vl.QuantLinear",
                {x, g.initializer_u8("w", {s.n_tiles(), s.k_blocks(), s.tile_block_bytes()}, p.weight),
                 g.initializer_f16("s", {s.n_tiles(), s.k_blocks(), 16}, p.scales)},
                {{"K", s.k}, {"N", s.n}, {"bits", 4}, {"block_size", 32}});
  }, static_cast<double>(p.weight.size() + 2 * p.scales.size()));
  for (int level : {0, 4}) {
    one(level == 0 ? "mnb_level0" : "mnb_level4", [&](builder::Graph& g, const builder::Value& x) {
      return g.op("com.microsoft.MatMulNBits",
                  {x, g.initializer_u8("w", {layer.n, s.k_blocks(), 16}, q.packed),
                   g.initializer_f32("s", {layer.n, s.k_blocks()}, q.scales)},
                  {{"K", layer.k}, {"N", layer.n}, {"bits", 4}, {"block_size", 32}, {"accuracy_level", level}});
    }, static_cast<double>(q.packed.size() + 4 * q.scales.size()));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double seconds = 1.0;
  std::vector<std::int64_t> rows = {1, 128, 512};
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") threads = std::atoi(argv[i + 1]);
    else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (flag == "--rows") rows = parse_list(argv[i + 1]);
    else if (flag == "--layers") only = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: kernels_bench [--threads N] [--seconds S] [--rows 1,128] [--layers qkv,down]\n");
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("q3vl_kernels_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::printf("machine: %s, %d threads, q3vl isa %s, load average (1 min) at start %s\n",
              read_line("/proc/cpuinfo", "model name").c_str(), threads, kernels::to_string(kernels::active_isa()),
              load_average().c_str());
  std::printf("| layer | N x K | M | kernel | ms/call | GB/s (weights) | GOPS | CPU ms/call | GOPS per CPU-s |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  runtime::SessionConfig config;
  config.intra_op_threads = threads;
  for (const Layer& layer : kLayers) {
    if (!only.empty() && (',' + only + ',').find(std::string(",") + layer.name + ",") == std::string::npos) continue;
    const auto variants = write_graphs(dir, layer);
    for (std::int64_t m : rows) {
      std::vector<float> x(static_cast<std::size_t>(m * layer.k));
      std::mt19937 rng(2);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (auto& v : x) v = normal(rng);
      std::vector<std::int64_t> shape{m, layer.k};
      const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
      for (const Variant& v : variants) {
        runtime::OrtSession session(v.label, v.path, config);
        std::vector<Ort::Value> inputs;
        inputs.push_back(Ort::Value::CreateTensor<float>(memory, x.data(), x.size(), shape.data(), shape.size()));
        session.run({"x"}, inputs, {"y"});  // warm-up (and MatMulNBits' prepack)
        int calls = 0;
        const auto start = std::chrono::steady_clock::now();
        const double cpu_start = cpu_seconds();
        double elapsed = 0;
        do {
          session.run({"x"}, inputs, {"y"});
          ++calls;
          elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } while (elapsed < seconds);
        const double per_call = elapsed / calls;
        const double cpu_per_call = (cpu_seconds() - cpu_start) / calls;
        const double ops = 2.0 * static_cast<double>(m * layer.n * layer.k);
        std::printf("| %s | %lld x %lld | %lld | %s | %.3f | %.1f | %.0f | %.3f | %.0f |\n", layer.name,
                    static_cast<long long>(layer.n), static_cast<long long>(layer.k), static_cast<long long>(m),
                    v.label, per_call * 1e3, v.weight_bytes / per_call / 1e9, ops / per_call / 1e9,
                    cpu_per_call * 1e3, ops / cpu_per_call / 1e9);
        std::fflush(stdout);
      }
    }
  }
  std::printf("load average (1 min) at end %s\n", load_average().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}
