#include "runtime/sequence.h"

#include <algorithm>

#include "q3vl/error.h"
#include "runtime/json_constraint.h"
#include "runtime/token_bytes.h"
#include "runtime/tool_call_constraint.h"

namespace q3vl::runtime {

void check_generate_options(const GenerateOptions& options) {
  if (options.max_new_tokens < 1) {
    throw_error(ErrorKind::usage, "", "max_new_tokens", "integer >= 1", std::to_string(options.max_new_tokens));
  }
  if (options.top_logprobs < -1 || options.top_logprobs > 20) {
    throw_error(ErrorKind::usage, "", "top_logprobs", "-1 (none) or 0..20", std::to_string(options.top_logprobs));
  }
  if (options.json_object && !options.tool_call_names.empty()) {
    throw_error(ErrorKind::usage, "", "tool_call_names", "empty when json_object is set", "a tool call forced too");
  }
  check_tool_call_names(options.tool_call_names);
  check_sampling_options(options.sampling);
}

Sequence::Sequence(const ModelParts& parts, const GenerateOptions& options, std::span<const std::int64_t> prompt_ids,
                   std::int64_t max_new_tokens)
    : options_(options),
      max_new_(max_new_tokens),
      sampler_(options.sampling, parts.manifest.vocab_size),
      matcher_(options.stop_strings),
      stream_(parts.tokenizer.decode_stream(/*skip_special_tokens=*/true)) {
  sampler_.reset(prompt_ids);
  if (options.json_object) {
    constraint_ = std::make_unique<JsonConstraint>(TokenBytes::of(parts), options.stop_token_ids);
  } else if (!options.tool_call_names.empty()) {
    constraint_ = std::make_unique<ToolCallConstraint>(
        TokenBytes::of(parts), tool_call_format(parts.tokenizer, options.tool_call_names), options.stop_token_ids);
  }
  result_.finish_reason = FinishReason::length;
}

std::string Sequence::flush_tail() {
  const auto tail = matcher_.push(stream_.flush());
  if (tail.stopped) {
    result_.finish_reason = FinishReason::stop_string;
    return tail.releasable;
  }
  return tail.releasable + matcher_.flush();
}

bool Sequence::step(std::span<const float> logits, const TokenSink& on_token) {
  if (constraint_) constraint_->mask(allowed_, max_new_ - static_cast<std::int64_t>(result_.token_ids.size()));
  const std::int64_t id = sampler_.sample(logits, allowed_);
  if (result_.token_ids.empty()) first_token_ = Clock::now();
  sampler_.accept(id);
  result_.token_ids.push_back(id);
  TokenEvent event;
  event.token_id = id;
  if (options_.top_logprobs >= 0) {
    TokenLogprobs lp = compute_logprobs(sampler_.penalised_scores(), id, options_.top_logprobs);
    event.logprob = lp.logprob;
    event.top = lp.top;
    result_.logprobs.push_back(std::move(lp));
  }
  if (constraint_) constraint_->accept(id);

  std::string piece;
  const auto& stops = options_.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), id) != stops.end()) {
    result_.finish_reason = FinishReason::stop;
    finished_ = true;
    piece = flush_tail();  // may still complete a stop string
  } else {
    auto pushed = matcher_.push(stream_.step(static_cast<text::TokenId>(id)));
    piece = std::move(pushed.releasable);
    if (pushed.stopped) {
      result_.finish_reason = FinishReason::stop_string;
      finished_ = true;
    } else {
      if (constraint_ && constraint_->complete() && stops.empty()) {
        result_.finish_reason = FinishReason::stop;  // the object / call closed; nothing may follow
        finished_ = true;
      } else if (static_cast<std::int64_t>(result_.token_ids.size()) >= max_new_) {
        finished_ = true;  // finish_reason stays length
      }
      if (finished_) piece += flush_tail();
    }
  }
  result_.text += piece;
  event.piece = piece;
  if (on_token && !on_token(event) && !finished_) stop(FinishReason::cancelled);
  return !finished_;
}

void Sequence::stop(FinishReason reason) {
  result_.finish_reason = reason;
  finished_ = true;
}

}  // namespace q3vl::runtime
