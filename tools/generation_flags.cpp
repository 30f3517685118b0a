#include "generation_flags.h"

#include <CLI/CLI.hpp>

namespace q3vl::tools {

void GenerationFlags::add_to(CLI::App& command, const char* max_new_tokens_help) {
  command.add_option("--max-new-tokens", max_new_tokens, max_new_tokens_help)->check(CLI::PositiveNumber);
  command.add_option("--temperature", temperature, "Sampling temperature (0 = greedy)")->check(CLI::NonNegativeNumber);
  command.add_option("--top-k", top_k, "Keep the k best tokens (0 = off)")->check(CLI::NonNegativeNumber);
  command.add_option("--top-p", top_p, "Nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  command.add_option("--seed", seed, "Random seed (reproducible sampling)");
  command.add_option("--min-p", min_p, "Keep tokens with p >= min_p * p_max (0 = off)")->check(CLI::Range(0.0, 1.0));
  command.add_option("--repetition-penalty", repetition_penalty, "HF repetition penalty (1 = off)")
      ->check(CLI::Range(1e-3, 100.0));
  command.add_option("--presence-penalty", presence_penalty, "Subtracted once from every generated token's logit")
      ->check(CLI::Range(-2.0, 2.0));
  command.add_option("--frequency-penalty", frequency_penalty, "Subtracted per occurrence among generated tokens")
      ->check(CLI::Range(-2.0, 2.0));
  command.add_flag("--json-object", json_object, "Constrain the reply to one JSON object");
  command.add_option("--max-pixels", max_pixels, "Largest image / video size in pixels")->check(CLI::PositiveNumber);
  command.add_option("--threads", threads, "Threads per op (0 = all cores)")->check(CLI::NonNegativeNumber);
  command.add_flag("--no-spin", no_spin,
                   "Idle ONNX Runtime threads sleep instead of spinning (faster on a busy machine)");
}

ModelOptions GenerationFlags::model_options() const {
  ModelOptions options;
  options.intra_op_threads = threads;
  options.allow_spinning = !no_spin;
  return options;
}

void GenerationFlags::apply(GenerateOptions& options) const {
  if (max_new_tokens) options.max_new_tokens = *max_new_tokens;
  if (temperature) {
    options.sampling.temperature = *temperature;
    options.sampling.do_sample = *temperature > 0.0f;
  }
  if (top_k) options.sampling.top_k = *top_k;
  if (top_p) options.sampling.top_p = *top_p;
  if (seed) options.sampling.seed = *seed;
  if (min_p) options.sampling.min_p = *min_p;
  if (repetition_penalty) options.sampling.repetition_penalty = *repetition_penalty;
  if (presence_penalty) options.sampling.presence_penalty = *presence_penalty;
  if (frequency_penalty) options.sampling.frequency_penalty = *frequency_penalty;
  if (json_object) options.json_object = true;
  if (max_pixels) {
    options.image_max_pixels = *max_pixels;
    options.video_max_pixels = *max_pixels;
  }
}

}  // namespace q3vl::tools
