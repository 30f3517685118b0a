// q3vl eval-kl: KL divergence and top-1 agreement of a quantized package's logits
// against the FP32 package of the same checkpoint (include/q3vl/quality.h).
//   q3vl eval-kl --model PKG --reference FP32_PKG --text FILE [--context 512]
//                [--chunks N] [--image 448x448,1024x768|none] [--answer-tokens 64]
//                [--threads N] [--output md|json] [--quiet]
//   q3vl eval-kl --reference FP32_PKG --save-reference FILE --text FILE [...]   (once)
//   q3vl eval-kl --model PKG --reference-logits FILE --text FILE [...]          (per package)
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "q3vl/error.h"
#include "q3vl/quality.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

struct EvalKlArgs {
  std::filesystem::path model, reference, reference_logits, save_reference;
  KlOptions options;
  std::string images = "448x448,1024x768";
  std::string output = "md";
  int threads = 0;
  bool quiet = false;
};

int run(EvalKlArgs& args) {
  args.options.images = parse_bench_image_sizes(args.images, "--image");
  ModelOptions model_options;
  model_options.intra_op_threads = args.threads;
  BenchProgress progress;
  if (!args.quiet) {
    progress = [](const std::string& label) { std::fprintf(stderr, "q3vl eval-kl: %s\n", label.c_str()); };
  }
  if (args.reference.empty() == args.reference_logits.empty()) {
    throw_error(ErrorKind::usage, "", "--reference", "exactly one of --reference and --reference-logits",
                args.reference.empty() ? "neither" : "both");
  }
  if (!args.save_reference.empty() && args.reference.empty()) {
    throw_error(ErrorKind::usage, "", "--save-reference", "--reference PKG to compute the logits from", "none");
  }
  if (args.model.empty() && args.save_reference.empty()) {
    throw_error(ErrorKind::usage, "", "--model", "the package to score (or --save-reference alone)", "none");
  }
  const KlReference reference = args.reference.empty()
                                    ? load_kl_reference(args.reference_logits)
                                    : compute_kl_reference(args.reference, model_options, args.options, progress);
  if (!args.save_reference.empty()) {
    save_kl_reference(reference, args.save_reference);
    if (!args.quiet) std::fprintf(stderr, "q3vl eval-kl: reference logits saved to %s\n", args.save_reference.c_str());
    if (args.model.empty()) return 0;
  }
  const KlReport report = score_kl(reference, args.model, model_options, args.options, progress);
  const std::string text = args.output == "json" ? format_kl_json(report) : format_kl_markdown(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

RunFunction setup_eval_kl(CLI::App& command) {
  auto args = std::make_shared<EvalKlArgs>();
  KlOptions& o = args->options;
  command.add_option("--model", args->model, "Package to score (e.g. an int4 build)");
  command.add_option("--reference", args->reference, "FP32 package of the same checkpoint");
  command.add_option("--reference-logits", args->reference_logits,
                     "Reference logits saved by --save-reference (instead of --reference)");
  command.add_option("--save-reference", args->save_reference,
                     "Also write the reference's logits to FILE, to score more packages without recomputing them");
  command.add_option("--text", o.text_file, "Plain-text file to teacher-force (e.g. bench/quality/text.txt)")
      ->required();
  command.add_option("--context", o.context, "Tokens per text chunk (second half scored)")
      ->check(CLI::Range(4, 1 << 20))
      ->capture_default_str();
  command.add_option("--chunks", o.max_chunks, "Most text chunks (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("--image", args->images, "Image prompts: WIDTHxHEIGHT sizes (comma list, or none)")
      ->capture_default_str();
  command.add_option("--answer-tokens", o.answer_tokens, "Teacher-forced answer tokens per image")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--threads", args->threads, "Threads per op (0 = all cores)")->check(CLI::NonNegativeNumber);
  command.add_option("--output", args->output, "Report format")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  command.add_flag("--quiet", args->quiet, "No progress lines on stderr");
  return [args] { return run(*args); };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("eval-kl", "KL divergence of a quantized package's logits against its FP32 package",
                         setup_eval_kl);

}  // namespace q3vl::tools
