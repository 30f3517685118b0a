// kernels_bench: q3vl.QuantLinear vs MatMulNBits (levels 0 and 4) on 4B-shaped layers.
//
//   kernels_bench [--threads N] [--seconds S] [--layers q,qkv,o,gate_up,down] [--rows 1,128,512]
//                 [--formats int4,nl4,int5,int6,int8 [--blocks 32,64] [--rounds R]]
//
// --formats: instead of the MatMulNBits comparison, q3vl.QuantLinear in each weight format
// (quant_linear.h; symmetric, random codes: speed does not depend on them) at each block
// size of --blocks (default 32; a variant at another block is labelled FORMAT:BLOCK), the
// variants measured alternately R times (one session each, created once) and the median of
// the rounds reported, so a change in the machine's load hits every variant alike.
// GB/s counts the bytes each variant actually reads (bits/8 + 2/block per weight).
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

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

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
const Layer kLayers[] = {{"q", 4096, 2560},          {"qkv", 6144, 2560}, {"o", 2560, 4096},
                         {"gate_up", 19456, 2560}, {"down", 2560, 9728}};

struct FormatSpec {
  const char* name;
  int bits;
  kernels::WeightGrid grid;
};
const FormatSpec kFormats[] = {{"int4", 4, kernels::WeightGrid::uniform},
                               {"nl4", 4, kernels::WeightGrid::nl},
                               {"int5", 5, kernels::WeightGrid::uniform},
                               {"int6", 6, kernels::WeightGrid::uniform},
                               {"int8", 8, kernels::WeightGrid::uniform}};

using bench_util::cpu_seconds;
using bench_util::load_average;
using bench_util::read_line;

struct Variant {
  std::string label;
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
  const kernels::PackedMatrix p =
      kernels::pack(kernels::BlockwiseMatrix{{layer.n, layer.k, 4, 32}, q.packed, q.scales, {}});
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

// One q3vl.QuantLinear graph per format in `names` and block size in `blocks`: random
// bytes are valid codes in every format's tile layout, and random fp16 scales in
// [2^-8, 2^-7).
std::vector<Variant> write_format_graphs(const std::filesystem::path& dir, const Layer& layer,
                                         const std::vector<std::string>& names,
                                         const std::vector<std::int64_t>& blocks) {
  std::vector<Variant> out;
  std::mt19937 rng(3);
  for (const FormatSpec& f : kFormats) {
    if (std::find(names.begin(), names.end(), f.name) == names.end()) continue;
    for (const std::int64_t block : blocks) {
      const kernels::QuantLinearShape s{layer.n, layer.k, f.bits, block, f.grid};
      const std::string label = block == 32 ? f.name : std::string(f.name) + ":" + std::to_string(block);
      std::vector<std::uint8_t> weight(static_cast<std::size_t>(s.weight_bytes()));
      for (auto& b : weight) b = static_cast<std::uint8_t>(rng());
      std::vector<std::uint16_t> scales(static_cast<std::size_t>(s.scale_count()));
      for (auto& v : scales) v = static_cast<std::uint16_t>(0x1C00 + rng() % 0x400);
      const auto file = dir / (std::string(layer.name) + "_" + f.name + "_" + std::to_string(block) + ".onnx");
      builder::Graph g(label, dir / (file.filename().string() + ".data"));
      const builder::Value x = g.input("x", builder::DType::f32, {"rows", layer.k});
      std::vector<builder::Attr> attributes{{"K", s.k}, {"N", s.n}, {"bits", f.bits}, {"block_size", s.block_size}};
      if (f.grid == kernels::WeightGrid::nl) attributes.emplace_back("grid", "nl");
      g.output(g.op("q3vl.QuantLinear",
                    {x, g.initializer_u8("w", {s.n_tiles(), s.k_blocks(), s.tile_block_bytes()}, weight),
                     g.initializer_f16("s", {s.n_tiles(), s.k_blocks(), 16}, scales)},
                    attributes),
               "y", builder::DType::f32, {"rows", layer.n});
      g.save(file);
      out.push_back({label, file, static_cast<double>(weight.size() + 2 * scales.size())});
    }
  }
  return out;
}

struct Timing {
  double wall = 0, cpu = 0;  // seconds per call
};

Timing time_calls(runtime::OrtSession& session, std::vector<Ort::Value>& inputs, double seconds) {
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  double elapsed = 0;
  do {
    session.run({"x"}, inputs, {"y"});
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  return {elapsed / calls, (cpu_seconds() - cpu_start) / calls};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double seconds = 1.0;
  std::vector<std::int64_t> rows = {1, 128, 512}, blocks = {32};
  std::vector<std::string> layers, formats;
  int rounds = 1;
  std::vector<std::string> layer_names, format_names;
  for (const Layer& l : kLayers) layer_names.emplace_back(l.name);
  for (const FormatSpec& f : kFormats) format_names.emplace_back(f.name);
  CLI::App app("q3vl.QuantLinear vs MatMulNBits (levels 0 and 4) on 4B-shaped decoder layers", "kernels_bench");
  app.add_option("--threads", threads, "Intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "Time each variant at least this long")->check(CLI::PositiveNumber);
  app.add_option("--rows", rows, "Activation rows M, comma-separated")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--layers", layers, "Only these layers, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(layer_names));
  app.add_option("--formats", formats, "q3vl.QuantLinear in these weight formats instead of the MatMulNBits comparison")
      ->delimiter(',')
      ->check(CLI::IsMember(format_names));
  app.add_option("--blocks", blocks, "With --formats: block sizes q3vl.QuantLinear takes, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(std::vector<std::int64_t>{32, 64, 128}));
  app.add_option("--rounds", rounds, "With --formats: alternating rounds, medians reported")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const auto dir = std::filesystem::temp_directory_path() / ("q3vl_kernels_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::printf("machine: %s, %d threads, q3vl isa %s, load average (1 min) at start %s\n",
              read_line("/proc/cpuinfo", "model name").c_str(), threads, kernels::to_string(kernels::active_isa()),
              load_average().c_str());
  if (!formats.empty()) std::printf("formats mode: %d alternating rounds, medians\n", rounds);
  std::printf("| layer | N x K | M | kernel | ms/call | GB/s (weights) | GOPS | CPU ms/call | GOPS per CPU-s |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  runtime::SessionConfig config;
  config.intra_op_threads = threads;
  for (const Layer& layer : kLayers) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), layer.name) == layers.end()) continue;
    const auto variants = formats.empty() ? write_graphs(dir, layer) : write_format_graphs(dir, layer, formats, blocks);
    for (std::int64_t m : rows) {
      std::vector<float> x(static_cast<std::size_t>(m * layer.k));
      std::mt19937 rng(2);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (auto& v : x) v = normal(rng);
      std::vector<std::int64_t> shape{m, layer.k};
      const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
      std::vector<runtime::OrtSession> sessions;
      std::vector<Ort::Value> inputs;
      inputs.push_back(Ort::Value::CreateTensor<float>(memory, x.data(), x.size(), shape.data(), shape.size()));
      for (const Variant& v : variants) {
        sessions.emplace_back(v.label, v.path, config);
        sessions.back().run({"x"}, inputs, {"y"});  // warm-up (and MatMulNBits' prepack)
      }
      // Rounds alternate the variants; each variant's figure is its median round.
      std::vector<std::vector<double>> wall(variants.size()), cpu(variants.size());
      for (int r = 0; r < rounds; ++r) {
        for (std::size_t i = 0; i < variants.size(); ++i) {
          const Timing t = time_calls(sessions[i], inputs, seconds);
          wall[i].push_back(t.wall);
          cpu[i].push_back(t.cpu);
        }
      }
      for (std::size_t i = 0; i < variants.size(); ++i) {
        const double per_call = median(wall[i]), cpu_per_call = median(cpu[i]);
        const double ops = 2.0 * static_cast<double>(m * layer.n * layer.k);
        std::printf("| %s | %lld x %lld | %lld | %s | %.3f | %.1f | %.0f | %.3f | %.0f |\n", layer.name,
                    static_cast<long long>(layer.n), static_cast<long long>(layer.k), static_cast<long long>(m),
                    variants[i].label.c_str(), per_call * 1e3, variants[i].weight_bytes / per_call / 1e9,
                    ops / per_call / 1e9, cpu_per_call * 1e3, ops / cpu_per_call / 1e9);
        std::fflush(stdout);
      }
    }
  }
  std::printf("load average (1 min) at end %s\n", load_average().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}
