// Chat: prompt -> prefix reuse -> chunked prefill -> sampled decode loop (include/q3vl/chat.h).
#include "q3vl/chat.h"

#include <algorithm>
#include <array>
#include <chrono>

#include "q3vl/error.h"
#include "q3vl/model.h"
#include "runtime/decoder_runner.h"
#include "runtime/model_parts.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/sampler.h"
#include "runtime/stop_strings.h"
#include "runtime/vision_features.h"

namespace q3vl {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void check_options(const GenerateOptions& options) {
  if (options.max_new_tokens < 1) {
    throw_error(ErrorKind::usage, "", "max_new_tokens", "integer >= 1", std::to_string(options.max_new_tokens));
  }
  const SamplingOptions& s = options.sampling;
  if (s.top_p <= 0.0f || s.top_p > 1.0f) throw_error(ErrorKind::usage, "", "top_p", "in (0, 1]", std::to_string(s.top_p));
  if (s.top_k < 0) throw_error(ErrorKind::usage, "", "top_k", "integer >= 0", std::to_string(s.top_k));
  if (s.temperature < 0.0f) throw_error(ErrorKind::usage, "", "temperature", ">= 0", std::to_string(s.temperature));
}

}  // namespace

struct Chat::State {
  explicit State(std::shared_ptr<const Model> m)
      : model(std::move(m)), parts(model->parts()), runner(parts), vision(parts) {}

  std::shared_ptr<const Model> model;
  const runtime::ModelParts& parts;  // owned by *model, which this State keeps alive
  runtime::DecoderRunner runner;
  runtime::VisionCache vision;
  // What the KV cache holds, token by token: id, signature, positions (T, H, W).
  std::vector<std::int64_t> cached_ids;
  std::vector<std::uint64_t> cached_signature;
  std::vector<std::array<std::int64_t, 3>> cached_positions;
  std::vector<text::Message> history;
  ChatStats stats;

  void drop_cache() {
    cached_ids.clear();
    cached_signature.clear();
    cached_positions.clear();
    runner.cache().clear();
  }
  void remember(std::int64_t id, std::uint64_t signature, std::array<std::int64_t, 3> position) {
    cached_ids.push_back(id);
    cached_signature.push_back(signature);
    cached_positions.push_back(position);
  }

  std::int64_t reusable_prefix(const runtime::Prompt& prompt) const;
  GenerateResult run(const std::vector<text::Message>& conversation, const GenerateOptions& options,
                     const StreamCallback& on_text);
};

std::int64_t Chat::State::reusable_prefix(const runtime::Prompt& prompt) const {
  // At least one prompt token is always prefilled: its logits choose the first new token.
  const std::size_t limit = std::min(cached_ids.size(), prompt.ids.size() - 1);
  std::size_t n = 0;
  while (n < limit && cached_ids[n] == prompt.ids[n] && cached_signature[n] == prompt.signature[n] &&
         cached_positions[n] == std::array<std::int64_t, 3>{prompt.positions.at(0, static_cast<std::int64_t>(n)),
                                                            prompt.positions.at(1, static_cast<std::int64_t>(n)),
                                                            prompt.positions.at(2, static_cast<std::int64_t>(n))}) {
    ++n;
  }
  return static_cast<std::int64_t>(n);
}

GenerateResult Chat::State::run(const std::vector<text::Message>& conversation, const GenerateOptions& options,
                                const StreamCallback& on_text) {
  check_options(options);
  const auto t0 = Clock::now();
  GenerateResult result;
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

  const std::int64_t reused = reusable_prefix(prompt);
  cached_ids.resize(static_cast<std::size_t>(reused));
  cached_signature.resize(static_cast<std::size_t>(reused));
  cached_positions.resize(static_cast<std::size_t>(reused));
  runner.cache().reserve(prompt_tokens + max_new);
  runner.cache().set_length(reused);

  const auto t_prefill = Clock::now();
  std::span<const float> logits = runtime::prefill(runner, prompt, reused, parts.options.prefill_chunk_tokens);
  for (std::int64_t i = reused; i < prompt_tokens; ++i) {
    remember(prompt.ids[static_cast<std::size_t>(i)], prompt.signature[static_cast<std::size_t>(i)],
             {prompt.positions.at(0, i), prompt.positions.at(1, i), prompt.positions.at(2, i)});
  }
  const auto t_prefilled = Clock::now();

  runtime::Sampler sampler(options.sampling, parts.manifest.vocab_size);
  sampler.reset(prompt.ids);
  runtime::StopStringMatcher matcher(options.stop_strings);
  text::DecodeStream stream = parts.tokenizer.decode_stream(/*skip_special_tokens=*/true);
  bool cancelled = false;
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    result.text += piece;
    if (on_text && !cancelled && !on_text(piece)) cancelled = true;
  };
  std::vector<float> embeds;
  Clock::time_point t_first{};
  result.finish_reason = FinishReason::length;
  while (true) {
    const std::int64_t next = sampler.sample(logits);
    if (result.token_ids.empty()) t_first = Clock::now();
    sampler.accept(next);
    result.token_ids.push_back(next);
    if (std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), next) != options.stop_token_ids.end()) {
      result.finish_reason = FinishReason::stop;
      break;
    }
    const auto pushed = matcher.push(stream.step(static_cast<text::TokenId>(next)));
    emit(pushed.releasable);
    if (pushed.stopped) {
      result.finish_reason = FinishReason::stop_string;
      break;
    }
    if (cancelled) {
      result.finish_reason = FinishReason::cancelled;
      break;
    }
    if (static_cast<std::int64_t>(result.token_ids.size()) >= max_new) break;
    const std::int64_t index = runner.cache().length();
    const std::int64_t position = vision::decode_position(index, prompt.positions.rope_delta);
    const std::int64_t one[1] = {next};
    runner.embed(one, embeds);
    const std::int64_t positions[3] = {position, position, position};
    logits = runner.run(embeds, {}, positions);
    remember(next, static_cast<std::uint64_t>(next), {position, position, position});
  }
  if (result.finish_reason != FinishReason::stop_string) {
    const auto tail = matcher.push(stream.flush());
    emit(tail.releasable);
    if (tail.stopped) {
      result.finish_reason = FinishReason::stop_string;
    } else {
      emit(matcher.flush());
    }
  }
  const auto t_end = Clock::now();

  result.usage.prompt_tokens = prompt_tokens;
  result.usage.completion_tokens = static_cast<std::int64_t>(result.token_ids.size());
  result.usage.cached_tokens = reused;
  result.usage.image_tokens = prompt.image_tokens;
  result.usage.video_tokens = prompt.video_tokens;
  Timings& tm = result.timings;
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
