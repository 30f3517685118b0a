// Chat: prompt -> prefix reuse -> chunked prefill -> sampled decode loop (include/q3vl/chat.h).
#include "q3vl/chat.h"

#include <algorithm>
#include <chrono>

#include "q3vl/error.h"
#include "q3vl/model.h"
#include "runtime/decoder_runner.h"
#include "runtime/kv_contents.h"
#include "runtime/model_parts.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/sequence.h"
#include "runtime/vision_features.h"

namespace q3vl {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

struct Chat::State {
  explicit State(std::shared_ptr<const Model> m)
      : model(std::move(m)), parts(model->parts()), runner(parts), vision(parts) {}

  std::shared_ptr<const Model> model;
  const runtime::ModelParts& parts;  // owned by *model, which this State keeps alive
  runtime::DecoderRunner runner;
  runtime::VisionCache vision;
  runtime::KvContents cached;  // what runner.cache() holds
  std::vector<text::Message> history;
  ChatStats stats;

  void drop_cache() {
    cached.clear();
    runner.cache().clear();
  }

  GenerateResult run(const std::vector<text::Message>& conversation, const GenerateOptions& options,
                     const StreamCallback& on_text);
};

GenerateResult Chat::State::run(const std::vector<text::Message>& conversation, const GenerateOptions& options,
                                const StreamCallback& on_text) {
  runtime::check_generate_options(options);
  const auto t0 = Clock::now();
  runtime::VisionRunStats vision_stats;
  std::vector<runtime::PromptMedium> images, videos;
  vision.collect(conversation, options, images, videos, vision_stats);
  const runtime::Prompt prompt = runtime::build_prompt(parts, conversation, options, images, videos);
  const auto prompt_tokens = static_cast<std::int64_t>(prompt.ids.size());
  if (prompt_tokens == 0) throw_error(ErrorKind::usage, "prompt", "", "at least one token", "an empty prompt");
  const std::int64_t context = model->context_length();
  if (prompt_tokens + 1 > context) {
    throw_error(ErrorKind::limit, "prompt", "prompt_tokens",
                "at most " + std::to_string(context - 1) + " tokens (the model's context is " +
                    std::to_string(context) + ")",
                std::to_string(prompt_tokens) + " tokens (" + std::to_string(prompt.image_tokens) + " image, " +
                    std::to_string(prompt.video_tokens) + " video)");
  }
  const std::int64_t max_new = std::min(options.max_new_tokens, context - prompt_tokens);

  const std::int64_t reused = cached.common_prefix(prompt);
  cached.truncate(reused);
  runner.cache().reserve(prompt_tokens + max_new);
  runner.cache().set_length(reused);

  const auto t_prefill = Clock::now();
  std::span<const float> logits = runtime::prefill(runner, prompt, reused, parts.options.prefill_chunk_tokens);
  cached.append_prompt(prompt, reused, prompt_tokens);
  const auto t_prefilled = Clock::now();

  runtime::Sequence sequence(parts, options, prompt.ids, max_new);
  const runtime::Sequence::TokenSink sink = [&on_text](const TokenEvent& event) {
    return event.piece.empty() || !on_text || on_text(event.piece);
  };
  std::vector<float> embeds;
  while (sequence.step(logits, sink)) {
    const std::int64_t next = sequence.last_token();
    const std::int64_t position = vision::decode_position(runner.cache().length(), prompt.positions.rope_delta);
    const std::int64_t one[1] = {next};
    runner.embed(one, embeds);
    const std::int64_t positions[3] = {position, position, position};
    logits = runner.run(embeds, {}, positions);
    cached.append_generated(next, position);
  }
  const auto t_end = Clock::now();

  GenerateResult result = std::move(sequence.result());
  result.usage.prompt_tokens = prompt_tokens;
  result.usage.completion_tokens = static_cast<std::int64_t>(result.token_ids.size());
  result.usage.cached_tokens = reused;
  result.usage.image_tokens = prompt.image_tokens;
  result.usage.video_tokens = prompt.video_tokens;
  Timings& tm = result.timings;
  const auto t_first = sequence.first_token_time();
  tm.vision_ms = vision_stats.ms;
  tm.prefill_ms = ms_between(t_prefill, t_prefilled);
  tm.prefill_tokens_per_s = tm.prefill_ms > 0 ? 1000.0 * static_cast<double>(prompt_tokens - reused) / tm.prefill_ms : 0.0;
  tm.ttft_ms = ms_between(t0, t_first);
  tm.decode_ms = ms_between(t_first, t_end);
  tm.decode_tokens_per_s =
      tm.decode_ms > 0 ? 1000.0 * static_cast<double>(result.token_ids.size() - 1) / tm.decode_ms : 0.0;
  tm.total_ms = ms_between(t0, t_end);

  stats.vision_calls += vision_stats.vision_calls;
  stats.vision_cache_hits += vision_stats.cache_hits;
  stats.prefilled_tokens += prompt_tokens - reused;
  stats.reused_tokens += reused;
  stats.cached_tokens = runner.cache().length();
  stats.kv_capacity = runner.cache().capacity();
  return result;
}

Chat::Chat(std::shared_ptr<const Model> model) : state_(std::make_unique<State>(std::move(model))) {}
Chat::~Chat() = default;
Chat::Chat(Chat&&) noexcept = default;
Chat& Chat::operator=(Chat&&) noexcept = default;

GenerateResult Chat::generate(const std::vector<text::Message>& conversation, const GenerateOptions& options,
                              const StreamCallback& on_text) {
  try {
    return state_->run(conversation, options, on_text);
  } catch (...) {
    state_->drop_cache();
    throw;
  }
}

GenerateResult Chat::send(text::Message user, const GenerateOptions& options, const StreamCallback& on_text) {
  state_->history.push_back(std::move(user));
  try {
    GenerateResult result = generate(state_->history, options, on_text);
    text::Message reply;
    reply.role = "assistant";
    reply.content = result.text;
    state_->history.push_back(std::move(reply));
    return result;
  } catch (...) {
    state_->history.pop_back();
    throw;
  }
}

const std::vector<text::Message>& Chat::history() const { return state_->history; }

void Chat::reset() {
  state_->drop_cache();
  state_->vision.clear();
  state_->history.clear();
  state_->stats = {};
}

ChatStats Chat::stats() const { return state_->stats; }

GenerateResult generate(const std::shared_ptr<const Model>& model, const std::vector<text::Message>& conversation,
                        const GenerateOptions& options, const StreamCallback& on_text) {
  Chat chat(model);
  return chat.generate(conversation, options, on_text);
}

}  // namespace q3vl
