// The flags `q3vl run` and `q3vl chat` share: sampling, limits and threading. Each is
// optional; one that is not given leaves the package's generation_config.json default.
#pragma once

#include <cstdint>
#include <optional>

#include "q3vl/generate.h"
#include "q3vl/model.h"

namespace CLI {
class App;
}

namespace q3vl::tools {

struct GenerationFlags {
  std::optional<std::int64_t> max_new_tokens;
  std::optional<float> temperature;
  std::optional<std::int64_t> top_k;
  std::optional<float> top_p;
  std::optional<std::uint64_t> seed;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<float> presence_penalty;
  std::optional<float> frequency_penalty;
  bool json_object = false;
  std::optional<std::int64_t> max_pixels;
  int threads = 0;
  bool no_spin = false;

  // Declares --max-new-tokens (described by `max_new_tokens_help`), --temperature,
  // --top-k, --top-p, --seed, --min-p, --repetition-penalty, --presence-penalty,
  // --frequency-penalty, --json-object, --max-pixels, --threads and --no-spin on
  // `command` (the server's sampling fields, same ranges).
  // `this` must outlive the parse.
  void add_to(CLI::App& command, const char* max_new_tokens_help);
  ModelOptions model_options() const;
  // Overrides the fields of `options` whose flag was given.
  void apply(GenerateOptions& options) const;
};

}  // namespace q3vl::tools
