// Sampler: turns one step's logits into a token id (include/q3vl/sampler.h has
// the pipeline). A Sampler belongs to one generation: it remembers which tokens
// the prompt and the generated text hold (for the penalties) and owns the
// seeded random stream. Not thread-safe.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "q3vl/generate.h"
#include "q3vl/sampler.h"

namespace q3vl::runtime {

// A token that survived the filters, with its probability among the survivors.
struct Candidate {
  std::int64_t id = 0;
  float score = 0.0f;        // processed logit (after penalties and temperature)
  double probability = 0.0;  // softmax over the survivors
};

// Throws q3vl::Error(usage) naming the field for a value out of range.
void check_sampling_options(const SamplingOptions& options);

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
  // `allowed` is empty or [vocab_size] with 0 for ids that must not be chosen (a
  // constraint's mask, applied after the penalties and before every warper); at least
  // one allowed id must have a finite score.
  std::int64_t sample(std::span<const float> logits, std::span<const std::uint8_t> allowed = {});

  // The surviving candidates for these logits, sorted by descending score
  // (greedy: the single argmax). Exposed so tests can check every filter.
  std::vector<Candidate> candidates(std::span<const float> logits, std::span<const std::uint8_t> allowed = {});

  // The last sample()/candidates() call's logits after the penalties, before any mask,
  // temperature or warper ([vocab_size]; valid until the next call): what logprobs use.
  std::span<const float> penalised_scores() const { return scores_; }

  const SamplingOptions& options() const { return options_; }

 private:
  void apply_penalties(std::span<const float> logits);

  SamplingOptions options_;
  std::int64_t vocab_size_;
  std::vector<std::uint8_t> in_sequence_;      // token seen in prompt or generated text
  std::vector<std::int32_t> generated_count_;  // occurrences among generated tokens
  std::vector<std::int64_t> penalised_;        // ids whose scores the penalties may change
  std::vector<float> scores_;                  // logits after the penalties
  std::mt19937_64 random_;
};

// log_softmax(scores) (double precision) of `chosen` and, for top > 0, of the `top`
// highest-scoring ids (descending; equal scores: lower id first). GenerateOptions::
// top_logprobs says which scores are meant (Sampler::penalised_scores).
TokenLogprobs compute_logprobs(std::span<const float> scores, std::int64_t chosen, int top);

}  // namespace q3vl::runtime
