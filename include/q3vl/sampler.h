// How the next token is chosen from the model's logits.
//
// The pipeline follows Hugging Face `generate` (transformers 5.23) where HF has
// the feature, in HF's order:
//   repetition penalty (over prompt + generated tokens)
//   -> presence / frequency penalties (over generated tokens, OpenAI semantics;
//      HF has none)
//   -> greedy: argmax, or sampling: temperature -> top-k -> top-p -> min-p -> draw.
// Greedy is `temperature == 0` or `do_sample == false`; like HF, greedy still
// applies the penalties (they are logits processors) but no warper.
#pragma once

#include <cstdint>
#include <optional>

namespace q3vl {

struct SamplingOptions {
  bool do_sample = true;
  float temperature = 1.0f;         // 0 means greedy
  std::int64_t top_k = 0;           // 0 = off; keeps every token scoring >= the k-th best (ties kept)
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f;  // 1 = off; score/p if score > 0 else score*p
  float presence_penalty = 0.0f;    // subtracted once from every token generated so far
  float frequency_penalty = 0.0f;   // subtracted per occurrence among generated tokens
  std::optional<std::uint64_t> seed;  // same seed + same logits => same tokens

  bool greedy() const { return !do_sample || temperature <= 0.0f; }
};

}  // namespace q3vl
