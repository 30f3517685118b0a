// q3vl bench: speed figures of one package, in the spirit of llama-bench.
//   q3vl bench --model PKG [-p 128,512] [-n 128] [-d 128] [-r 5] [--warmup 1]
//              [--image 448x448,1024x768|none] [--threads N] [--no-spin]
//              [--output md|json|csv] [--quiet] [--profile PREFIX]
// Prints the report on stdout (progress on stderr unless --quiet). What each figure
// measures is documented in include/q3vl/bench.h. --profile turns on ONNX Runtime's
// profiler for every session (ModelOptions::profile_prefix): one Chrome-trace JSON per
// graph, PREFIX.<graph>_<timestamp>.json, with every node of every run;
// bench/kernels/decode_profile.py summarises the decoder's. Profiled runs are slower.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "q3vl/bench.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

struct BenchArgs {
  std::filesystem::path model;
  BenchOptions options;
  std::string images = "448x448,1024x768";
  std::string output = "md";
  int threads = 0;
  bool no_spin = false;
  bool quiet = false;
  std::filesystem::path profile;
};

int run(BenchArgs& args) {
  args.options.images = parse_bench_image_sizes(args.images, "--image");
  ModelOptions model_options;
  model_options.intra_op_threads = args.threads;
  model_options.allow_spinning = !args.no_spin;
  model_options.profile_prefix = args.profile;
  BenchProgress progress;
  if (!args.quiet) {
    progress = [](const std::string& label) { std::fprintf(stderr, "q3vl bench: %s\n", label.c_str()); };
  }
  const BenchReport report = run_bench(args.model, model_options, args.options, progress);
  const std::string text = args.output == "json"  ? format_bench_json(report)
                           : args.output == "csv" ? format_bench_csv(report)
                                                  : format_bench_markdown(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  // run_bench's Model is gone, so ONNX Runtime has written the traces.
  if (!args.profile.empty() && !args.quiet) {
    std::fprintf(stderr, "q3vl bench: profiles written as %s.<graph>_<timestamp>.json\n", args.profile.c_str());
  }
  return 0;
}

RunFunction setup_bench(CLI::App& command) {
  auto args = std::make_shared<BenchArgs>();
  BenchOptions& o = args->options;
  command.add_option("--model", args->model, "q3vl package directory (from `q3vl build`)")->required();
  command.add_option("-p,--prompt-tokens", o.prompt_tokens, "Prefill tests: prompt lengths in tokens (comma list; 0 = none)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("-n,--decode-tokens", o.decode_tokens, "Decode test: tokens generated (0 = no decode test)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("-d,--decode-context", o.decode_context, "Decode test: prompt tokens before the first step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("-r,--repetitions", o.repetitions, "Timed runs of every test")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--warmup", o.warmup, "Untimed runs of every test before the timed ones")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("--image", args->images, "Image tests: WIDTHxHEIGHT sizes (comma list, or none)")
      ->capture_default_str();
  command.add_option("--threads", args->threads, "Threads per op (0 = all cores)")->check(CLI::NonNegativeNumber);
  command.add_flag("--no-spin", args->no_spin, "Idle ONNX Runtime threads sleep instead of spinning");
  command.add_option("--output", args->output, "Report format")
      ->check(CLI::IsMember({"md", "json", "csv"}))
      ->capture_default_str();
  command.add_flag("--quiet", args->quiet, "No progress lines on stderr");
  command.add_option("--profile", args->profile,
                     "Write ONNX Runtime profiles of every run as PREFIX.<graph>_<timestamp>.json (slows runs)");
  return [args] { return run(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("bench", "Measure prefill, decode, vision and TTFT speed of a package", setup_bench);

}  // namespace q3vl::tools
