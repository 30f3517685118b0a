// kv_bench: one decode step of the decoder's attention with a float32 KV cache
// (GroupQueryAttention) vs a float16 one, two ways: ONNX Runtime's GroupQueryAttention in
// float16 between Casts, and q3vl.KvAttention (builder/kv_attention.h), and vs an int8 one
// (q3vl.KvAttentionInt8), on the 4B text decoder's attention shape (32 query heads, 8 KV
// heads, head_dim 128).
//
//   kv_bench [--threads N] [--seconds S] [--context 512,2048] [--rounds R]
//
// Each variant is the attention fragment as a graph in its own ONNX Runtime session with
// the options q3vl uses. The KV buffers are bound as both past input and present output
// (the runtime's in-place contract), context rows valid, one new token per call. The
// variants alternate R rounds (the machine is shared: compare ratios within a round).
// Figures per call: wall ms, process CPU ms, and GB/s of KV bytes the step must read.
#include <onnxruntime_cxx_api.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_util.h"
#include "builder/graph.h"
#include "builder/kv_attention.h"
#include "runtime/ort_session.h"

namespace {

using namespace q3vl;

constexpr std::int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128;

using bench_util::cpu_seconds;
using bench_util::load_average;
using bench_util::read_line;

enum class Variant { gqa_f32, gqa_f16, q3vl_f16, q3vl_int8 };
const char* name(Variant v) {
  switch (v) {
    case Variant::gqa_f32: return "GroupQueryAttention float32";
    case Variant::gqa_f16: return "GroupQueryAttention float16 (+ Casts)";
    case Variant::q3vl_f16: return "q3vl.KvAttention float16";
    default: return "q3vl.KvAttentionInt8 int8";
  }
}

builder::DType cache_dtype(Variant v) {
  if (v == Variant::gqa_f32) return builder::DType::f32;
  return v == Variant::q3vl_int8 ? builder::DType::i8 : builder::DType::f16;
}

// Bytes of one cached row of kHeadDim values.
std::int64_t row_bytes(builder::DType kv) {
  if (kv == builder::DType::i8) return builder::kv_cache_width(kv, kHeadDim);
  return kHeadDim * (kv == builder::DType::f16 ? 2 : 4);
}

// The attention over past/present; q/k/v/output stay float32 at the graph edge.
// gqa_f32 and q3vl_f16 are what the builder writes (builder/kv_attention.h); gqa_f16 is
// the alternative it rejected: ONNX Runtime's GQA in float16 between Casts.
std::filesystem::path write_graph(const std::filesystem::path& dir, Variant variant) {
  const auto kv = cache_dtype(variant);
  const auto file = dir / ("attention_" + std::to_string(static_cast<int>(variant)) + ".onnx");
  builder::Graph g("attention", dir / (file.filename().string() + ".data"));
  const builder::Shape past{1, kKvHeads, "rows", builder::kv_cache_width(kv, kHeadDim)};
  const builder::Value q = g.input("q", builder::DType::f32, {1, 1, kHeads * kHeadDim});
  const builder::Value k = g.input("k", builder::DType::f32, {1, 1, kKvHeads * kHeadDim});
  const builder::Value v = g.input("v", builder::DType::f32, {1, 1, kKvHeads * kHeadDim});
  const builder::Value pk = g.input("past_key", kv, past);
  const builder::Value pv = g.input("past_value", kv, past);
  const builder::Value seqlens = g.input("seqlens_k", builder::DType::i32, {1});
  const builder::Value total = g.input("total_sequence_length", builder::DType::i32, {});
  builder::KvAttention a;
  if (variant == Variant::gqa_f16) {
    auto half = [&](const builder::Value& x) { return g.op("Cast", {x}, {{"to", 10}}); };
    auto outs = g.ops<3>("com.microsoft.GroupQueryAttention", {half(q), half(k), half(v), pk, pv, seqlens, total},
                         {{"num_heads", kHeads}, {"kv_num_heads", kKvHeads}, {"scale", 0.08838834764831845},
                          {"do_rotary", 0}});
    a = {g.op("Cast", {outs[0]}, {{"to", 1}}), outs[1], outs[2]};
  } else {
    a = builder::write_kv_attention(g, {kHeads, kKvHeads, kHeadDim, kv}, q, k, v, pk, pv, seqlens, total);
  }
  g.output(a.output, "o", builder::DType::f32, {1, 1, kHeads * kHeadDim});
  g.output(a.present_key, "present_key", kv, past);
  g.output(a.present_value, "present_value", kv, past);
  g.save(file);
  return file;
}

struct Run {
  double ms = 0, cpu_ms = 0;
};

Run measure(runtime::OrtSession& session, builder::DType kv_type, std::int64_t context, double seconds) {
  const auto cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const std::int64_t rows = context + 1;
  const bool half = kv_type == builder::DType::f16;
  const auto count = static_cast<std::size_t>(kKvHeads * rows * kHeadDim);
  const auto bytes = static_cast<std::size_t>(kKvHeads * rows * row_bytes(kv_type));
  std::vector<unsigned char> keys(bytes), values(bytes);
  std::mt19937 rng(3);
  if (kv_type == builder::DType::i8) {  // random codes; each row's float16 scales 1/127
    for (std::size_t i = 0; i < bytes; ++i) {
      keys[i] = static_cast<unsigned char>(rng());
      values[i] = static_cast<unsigned char>(rng());
    }
    const std::int64_t rb = row_bytes(kv_type);
    for (std::int64_t r = 0; r < kKvHeads * rows; ++r) {
      for (std::int64_t b = kHeadDim; b < rb; b += 2) {
        const std::uint16_t scale = 0x2008;  // float16 ~ 1/127
        std::memcpy(keys.data() + r * rb + b, &scale, 2);
        std::memcpy(values.data() + r * rb + b, &scale, 2);
      }
    }
  } else if (half) {  // finite halves in [-1, 1): sign, exponent 0..14, random mantissa
    auto* k16 = reinterpret_cast<std::uint16_t*>(keys.data());
    auto* v16 = reinterpret_cast<std::uint16_t*>(values.data());
    for (std::size_t i = 0; i < count; ++i) {
      k16[i] = static_cast<std::uint16_t>((rng() & 0x83ffu) | ((rng() % 15) << 10));
      v16[i] = static_cast<std::uint16_t>((rng() & 0x83ffu) | ((rng() % 15) << 10));
    }
  } else {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto* k32 = reinterpret_cast<float*>(keys.data());
    auto* v32 = reinterpret_cast<float*>(values.data());
    for (std::size_t i = 0; i < count; ++i) k32[i] = normal(rng), v32[i] = normal(rng);
  }
  std::vector<float> q(kHeads * kHeadDim, 0.1f), k(kKvHeads * kHeadDim, 0.2f), v(kKvHeads * kHeadDim, 0.3f);
  std::vector<float> o(kHeads * kHeadDim);
  std::int32_t seqlens = static_cast<std::int32_t>(context), total = static_cast<std::int32_t>(rows);
  const std::int64_t q_shape[3] = {1, 1, kHeads * kHeadDim}, kv_shape[3] = {1, 1, kKvHeads * kHeadDim};
  const std::int64_t cache_shape[4] = {1, kKvHeads, rows, builder::kv_cache_width(kv_type, kHeadDim)}, one[1] = {1};
  const auto type = half                               ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16
                    : kv_type == builder::DType::i8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8
                                                     : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  Ort::Value qv = Ort::Value::CreateTensor<float>(cpu, q.data(), q.size(), q_shape, 3);
  Ort::Value kv = Ort::Value::CreateTensor<float>(cpu, k.data(), k.size(), kv_shape, 3);
  Ort::Value vv = Ort::Value::CreateTensor<float>(cpu, v.data(), v.size(), kv_shape, 3);
  Ort::Value ov = Ort::Value::CreateTensor<float>(cpu, o.data(), o.size(), q_shape, 3);
  Ort::Value pk = Ort::Value::CreateTensor(cpu, keys.data(), keys.size(), cache_shape, 4, type);
  Ort::Value pv = Ort::Value::CreateTensor(cpu, values.data(), values.size(), cache_shape, 4, type);
  Ort::Value sv = Ort::Value::CreateTensor<std::int32_t>(cpu, &seqlens, 1, one, 1);
  Ort::Value tv = Ort::Value::CreateTensor<std::int32_t>(cpu, &total, 1, one, 0);
  Ort::IoBinding b(session.session());
  b.BindInput("q", qv);
  b.BindInput("k", kv);
  b.BindInput("v", vv);
  b.BindInput("past_key", pk);
  b.BindInput("past_value", pv);
  b.BindInput("seqlens_k", sv);
  b.BindInput("total_sequence_length", tv);
  b.BindOutput("o", ov);
  b.BindOutput("present_key", pk);
  b.BindOutput("present_value", pv);
  session.session().Run(Ort::RunOptions{nullptr}, b);  // warm-up
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = cpu_seconds();
  double elapsed = 0;
  do {
    session.session().Run(Ort::RunOptions{nullptr}, b);
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < seconds);
  return {elapsed / calls * 1e3, (cpu_seconds() - cpu_start) / calls * 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, rounds = 2;
  double seconds = 1.0;
  std::vector<std::int64_t> contexts = {512, 2048};
  CLI::App app("One decode step of the 4B decoder's attention per KV cache type", "kv_bench");
  app.add_option("--threads", threads, "Intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "Time each variant at least this long")->check(CLI::PositiveNumber);
  app.add_option("--context", contexts, "Cached tokens, comma-separated")->delimiter(',')->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "Alternating rounds")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const auto dir = std::filesystem::temp_directory_path() / ("q3vl_kv_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::printf("machine: %s, %d threads, load average (1 min) at start %s\n",
              read_line("/proc/cpuinfo", "model name").c_str(), threads, load_average().c_str());
  std::printf("| round | context | attention | ms/step | CPU ms/step | GB/s (KV read) |\n|---|---|---|---|---|---|\n");
  runtime::SessionConfig config;
  config.intra_op_threads = threads;
  const Variant variants[] = {Variant::gqa_f32, Variant::gqa_f16, Variant::q3vl_f16, Variant::q3vl_int8};
  std::vector<std::unique_ptr<runtime::OrtSession>> sessions;
  for (const Variant v : variants) {
    sessions.push_back(std::make_unique<runtime::OrtSession>("attention", write_graph(dir, v), config));
  }
  for (int r = 0; r < rounds; ++r) {
    for (const std::int64_t context : contexts) {
      for (std::size_t i = 0; i < std::size(variants); ++i) {
        const builder::DType kv = cache_dtype(variants[i]);
        const Run run = measure(*sessions[i], kv, context, seconds);
        const double bytes = 2.0 * static_cast<double>(kKvHeads * (context + 1) * row_bytes(kv));
        std::printf("| %d | %lld | %s | %.3f | %.3f | %.1f |\n", r + 1, static_cast<long long>(context),
                    name(variants[i]), run.ms, run.cpu_ms, bytes / run.ms / 1e6);
        std::fflush(stdout);
      }
    }
  }
  std::printf("load average (1 min) at end %s\n", load_average().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}
