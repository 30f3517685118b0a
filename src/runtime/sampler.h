// Sampler: turns one step's logits into a token id (include/q3vl/sampler.h has
// the pipeline). A Sampler belongs to one generation: it remembers which tokens
// the prompt and the generated text hold (for the penalties) and owns the
// seeded random stream. Not thread-safe.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "q3vl/sampler.h"

namespace q3vl::runtime {

// A token that survived the filters, with its probability among the survivors.
struct Candidate {
  std::int64_t id = 0;
  float score = 0.0f;        // processed logit (after penalties and temperature)
  double probability = 0.0;  // softmax over the survivors
};

class Sampler {
 public:
  // `vocab_size` is the logits width. Without options.seed the stream is seeded
  // from std::random_device.
  Sampler(SamplingOptions options, std::int64_t vocab_size);

  // Starts a new sequence whose prompt is `prompt_ids` (for the repetition penalty).
  void reset(std::span<const std::int64_t> prompt_ids);
  // Records a token appended to the sequence (generated or forced).
  void accept(std::int64_t id);

  // Picks the next token from raw logits [vocab_size]. Does not call accept().
  std::int64_t sample(std::span<const float> logits);

  // The surviving candidates for these logits, sorted by descending score
  // (greedy: the single argmax). Exposed so tests can check every filter.
  std::vector<Candidate> candidates(std::span<const float> logits);

  const SamplingOptions& options() const { return options_; }

 private:
  void apply_penalties(std::span<const float> logits);

  SamplingOptions options_;
  std::int64_t vocab_size_;
  std::vector<std::uint8_t> in_sequence_;      // token seen in prompt or generated text
  std::vector<std::int32_t> generated_count_;  // occurrences among generated tokens
  std::vector<std::int64_t> penalised_;        // ids whose scores the penalties may change
  std::vector<float> scores_;                  // scratch: processed logits
  std::mt19937_64 random_;
};

}  // namespace q3vl::runtime
