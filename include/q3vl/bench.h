// q3vl::bench — the measuring instrument behind `q3vl bench`, in the spirit of llama-bench.
//
// run_bench() loads a package once and measures, each test after `warmup` untimed runs
// and then `repetitions` timed runs (mean and sample standard deviation reported):
//   prefill   exactly p random text token ids (drawn from [0, first special id), fixed seed)
//             through the runtime's chunked prefill (embed + decoder, the product's code);
//             tok/s = p / time.
//   decode    n decoder steps after a prompt of `decode_context` tokens, each step
//             = greedy pick of the previous logits + embed + decoder; tok/s = n / time.
//   image     a synthetic W x H image (uncompressed BMP, deterministic pattern) in a
//             one-turn conversation "Describe this image in one sentence.", generated
//             with a fresh Chat and max_new_tokens 1: vision ms (decode + preprocessing
//             + vision graph, Timings::vision_ms) and TTFT (request -> first token,
//             Timings::ttft_ms); the prompt's image token count is reported.
// Bytes per decode token are the decoder's weight bytes (bench_decoder_weights()): every
// initializer of decoder.onnx, inline or external, counted once, except that an MoE
// layer's stacked expert tensors count k/E of their bytes (num_experts_per_tok of
// num_experts: the experts one token reads). The embedding table is
// in embed.onnx and is not counted (a decode step reads one row of it); neither is the KV
// cache, reported separately as kv_bytes_per_token (bytes a step reads per context token).
//
// Units: tokens, milliseconds, bytes; rates per second. Thread-safety: run_bench() uses
// the calling thread and the model's ONNX Runtime pools; the formatters are pure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "q3vl/model.h"

namespace q3vl {

struct BenchImageSize {
  std::int64_t width = 0;   // pixels
  std::int64_t height = 0;  // pixels
};

struct BenchOptions {
  std::vector<std::int64_t> prompt_tokens = {128, 512};  // prefill tests; each >= 0, 0 = skipped (as llama-bench)
  std::int64_t decode_tokens = 128;                      // 0 = no decode test
  std::int64_t decode_context = 128;                     // prompt tokens before the decode test
  std::vector<BenchImageSize> images = {{448, 448}, {1024, 768}};  // each side >= 1
  int repetitions = 5;  // >= 1
  int warmup = 1;       // >= 0 untimed runs of every test first
  std::uint64_t seed = 0;  // token ids of the prefill / decode prompts
};

// Mean and sample standard deviation (n - 1; 0 for one sample) of the timed runs.
struct BenchStat {
  double mean = 0.0;
  double sd = 0.0;
  std::vector<double> samples;
};

struct BenchMachine {
  std::string cpu;               // /proc/cpuinfo "model name"
  std::int64_t logical_cpus = 0;
  std::vector<std::string> isa;  // of avx2, avx512f, avx512_vnni, avx512_bf16, avx_vnni, amx_int8, fma, f16c
  std::string kernel;            // uname release
  std::string q3vl_version;      // q3vl::kVersion
  std::string q3vl_commit;       // git commit of the build ("unknown" outside a git checkout)
  std::string ort_version;       // ONNX Runtime's GetVersionString()
};

struct BenchPackage {
  std::string path;
  std::string decoder_precision, vision_precision;  // manifest
  std::string quantization;                          // e.g. "int4 rtn block 32 level 4", "" for none
  std::int64_t decoder_weight_bytes = 0;   // see above
  std::int64_t linear_weight_bytes = 0;    // of those: initializers of the *_proj layers and lm_head
  std::int64_t linear_weights = 0;         // their weight count from config.json (lm_head included)
  std::int64_t kv_bytes_per_token = 0;     // KV cache bytes per context token (all layers, K + V)
  bool has_vision = false;
};

struct BenchPrefill {
  std::int64_t prompt_tokens = 0;
  BenchStat ms;
  BenchStat tokens_per_s;
};

struct BenchDecode {
  std::int64_t context_tokens = 0;  // prompt tokens before the first timed step
  std::int64_t tokens = 0;          // timed decoder steps
  BenchStat tokens_per_s;
  BenchStat weight_gb_per_s;        // decoder_weight_bytes * tok/s / 1e9, per run
  // Bytes a timed step reads on average: the decoder's weights and the K and V rows it
  // attends over (kv_bytes_per_token per cached token; step i of n attends over
  // context_tokens + i + 1 of them).
  double read_bytes_per_token = 0.0;
  BenchStat read_gb_per_s;          // read_bytes_per_token * tok/s / 1e9, per run
};

struct BenchImage {
  BenchImageSize size;
  std::int64_t image_tokens = 0;   // placeholder tokens of the image in the prompt
  std::int64_t prompt_tokens = 0;  // whole prompt
  BenchStat vision_ms;
  BenchStat ttft_ms;
};

struct BenchReport {
  BenchMachine machine;
  BenchPackage package;
  int threads = 0;  // ModelOptions::intra_op_threads (0 = ONNX Runtime's default)
  bool spinning = true;
  int repetitions = 0, warmup = 0;
  double load_ms = 0.0;  // Model::load
  std::vector<BenchPrefill> prefill;
  std::vector<BenchDecode> decode;  // empty when decode_tokens is 0
  std::vector<BenchImage> images;   // empty when the package has no vision graph
  std::int64_t peak_rss_bytes = 0;  // getrusage(RUSAGE_SELF).ru_maxrss at the end
  std::string started_utc;          // ISO 8601
};

// Called before each test with a short label ("prefill 512 (rep 2/5)"); may be empty.
using BenchProgress = std::function<void(const std::string& label)>;

// Loads `package_dir` with `model_options` and runs every test in `options`.
// Throws q3vl::Error: usage (an option out of range: names it), plus whatever
// Model::load and generation throw (io, format, runtime, limit: a test longer than the
// model's context). Image tests on a package without a vision graph are skipped (the
// report's package.has_vision says so).
BenchReport run_bench(const std::filesystem::path& package_dir, const ModelOptions& model_options,
                      const BenchOptions& options, const BenchProgress& progress = {});

// The machine run_bench() records (also used by other measuring tools).
BenchMachine describe_machine();

// The decoder weight figures of BenchPackage for a loaded model. Throws q3vl::Error(io /
// format) if decoder.onnx or its weights file cannot be read.
BenchPackage describe_package(const Model& model);

// The operators a graph file uses outside ONNX's default domain ("q3vl.QuantLinear",
// "com.microsoft.MatMulNBits") with their node counts, sorted by name: which kernels a
// package runs. Reads the graph's structure only, not its external weights. Throws
// q3vl::Error io / format naming the file.
std::vector<std::pair<std::string, std::int64_t>> graph_domain_ops(const std::filesystem::path& onnx_file);

// Renderings of a report. Markdown: a header block (machine, package) and one table row
// per test, like llama-bench ("pp512", "tg128", "vision 448x448", "ttft 448x448").
// JSON: one object with every field above. CSV: a header line and one line per test
// with the machine and package columns repeated.
std::string format_bench_markdown(const BenchReport& report);
std::string format_bench_json(const BenchReport& report);
std::string format_bench_csv(const BenchReport& report);

// "448x448,1024x768" -> sizes; "" or "none" -> no sizes. Throws q3vl::Error(usage)
// naming `flag` for a malformed item or a side < 1.
std::vector<BenchImageSize> parse_bench_image_sizes(const std::string& text, const std::string& flag);

}  // namespace q3vl
