// Sequence: one generation after its prompt — the body of the decode loop that q3vl::Chat
// and the Scheduler share. Each step() takes the logits row of the last fed position and
//   masks it (json_object, tool_call_names), samples the next token (penalties, warpers, the request's own
//   seeded stream), computes its logprobs (top_logprobs), streams its text (decode stream
//   -> stop strings), and says whether generation goes on.
// The decoder calls are the caller's: when step() returns true, feed last_token() at the
// next position and call step() with its logits.
//
// Not thread-safe; one per request. The ModelParts outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "q3vl/generate.h"
#include "q3vl/scheduler.h"
#include "q3vl/tokenizer.h"
#include "runtime/model_parts.h"
#include "runtime/sampler.h"
#include "runtime/stop_strings.h"
#include "runtime/token_constraint.h"

namespace q3vl::runtime {

class Sequence {
 public:
  using Clock = std::chrono::steady_clock;
  // Gets every chosen token; returns false to cancel (finish_reason cancelled).
  using TokenSink = std::function<bool(const TokenEvent&)>;

  // `options` were checked by check_generate_options; `prompt_ids` feed the repetition
  // penalty; at most `max_new_tokens` (>= 1) are generated.
  Sequence(const ModelParts& parts, const GenerateOptions& options, std::span<const std::int64_t> prompt_ids,
           std::int64_t max_new_tokens);

  // Chooses the next token from `logits` [vocab_size] and streams it to `on_token`.
  // Returns true if generation continues (feed last_token() next), false once finished.
  // Requires !finished().
  bool step(std::span<const float> logits, const TokenSink& on_token);

  // Ends the generation now (cancel, shutdown): finish_reason `reason`, held-back text dropped.
  void stop(FinishReason reason);

  bool finished() const { return finished_; }
  std::int64_t last_token() const { return result_.token_ids.back(); }
  // When the first token was chosen (Clock's epoch before that).
  Clock::time_point first_token_time() const { return first_token_; }
  // The result so far: text, token ids, logprobs, finish reason (usage and timings are
  // the caller's to fill in).
  GenerateResult& result() { return result_; }

 private:
  std::string flush_tail();  // text held back by the decode stream and stop strings

  const GenerateOptions& options_;  // the caller's copy, which outlives the Sequence
  std::int64_t max_new_;
  Sampler sampler_;
  StopStringMatcher matcher_;
  text::DecodeStream stream_;
  std::unique_ptr<TokenConstraint> constraint_;  // json_object or tool_call_names; else none
  std::vector<std::uint8_t> allowed_;
  GenerateResult result_;
  bool finished_ = false;
  Clock::time_point first_token_{};
};

// Throws q3vl::Error(usage) naming the field for a GenerateOptions value out of range.
void check_generate_options(const GenerateOptions& options);

}  // namespace q3vl::runtime
