// Generation requests and results: options, the streaming callback, and the one-shot
// q3vl::generate() over a whole conversation. Multi-turn use with a kept KV cache is
// q3vl::Chat (chat.h); generate() is a Chat used once.
//
// Units: tokens for counts, milliseconds for times, pixels for image limits.
// Thread-safety: plain values; generate() may run concurrently on one shared Model.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "q3vl/image.h"
#include "q3vl/messages.h"
#include "q3vl/sampler.h"

namespace q3vl {

class Model;

struct GenerateOptions {
  SamplingOptions sampling;
  std::int64_t max_new_tokens = 256;  // >= 1
  std::vector<std::string> stop_strings;           // matched across token boundaries
  std::vector<std::int64_t> stop_token_ids;        // generation_config.json eos ids by default
  // Per-request image / video pixel bounds (HF processor `size`); unset = package config.
  std::optional<std::int64_t> image_min_pixels;
  std::optional<std::int64_t> image_max_pixels;
  std::optional<std::int64_t> video_min_pixels;  // all sampled frames together
  std::optional<std::int64_t> video_max_pixels;
  // Decode limits of every image and every video frame (pixels, side), checked from the
  // header before any pixel is decoded: above them generate() / Scheduler::submit()
  // throw Error(limit) naming the medium. Media errors name it by its path, or as
  // "messages[i].content[j]" (conversation indices) for bytes and data: URLs.
  ImageLimits media_limits;
  std::optional<std::string> tools_json;  // OpenAI `tools` array text for the template
  // Log-probabilities of the generated tokens (GenerateResult::logprobs, TokenEvent):
  // -1 none; 0 the chosen token's only; k in 1..20 also the k most likely tokens.
  // A logprob is log_softmax over the whole vocabulary of the logits after the
  // repetition / presence / frequency penalties, at temperature 1, before top-k /
  // top-p / min-p and the json_object mask: the model's distribution as the penalties
  // shape it, whatever the sampling settings (vLLM's "processed_logits" minus the
  // warpers; with no penalties it is vLLM's default raw logprobs).
  int top_logprobs = -1;
  // Constrain sampling so the generated text is exactly one JSON object (OpenAI
  // response_format {"type": "json_object"}): tokens whose text would make the output
  // invalid JSON are masked; once the object closes only a stop token may follow (with
  // no stop_token_ids generation ends there). The text starts with '{'; whitespace runs
  // inside are capped at 32 bytes so a model cannot loop on them. When the tokens left
  // (max_new_tokens, or the context) just suffice to close the object, only tokens that
  // keep it closable are allowed, so the output is complete JSON even when the budget
  // ends it (unless max_new_tokens < 3); cancellation can still cut it short.
  bool json_object = false;
  // Constrain sampling so the reply is exactly one tool call to one of these functions,
  // in the format the Qwen3 chat templates render (OpenAI tool_choice "required": every
  // tool's name; a named tool_choice: that one):
  //   <tool_call>\n{"name": "<name>", "arguments": <JSON object>}\n</tool_call>
  // with the arguments constrained as json_object constrains a reply (they always parse
  // as one object, within the token budget alike), `<tool_call>` / `</tool_call>` each
  // generated as their one added token, and only a stop token after it (with no
  // stop_token_ids generation ends there). Empty = free text. Names must be non-empty,
  // without '"', '\\' or control characters; not together with json_object.
  std::vector<std::string> tool_call_names;
};

enum class FinishReason {
  stop,         // a stop token id was generated (it is in token_ids, not in text)
  length,       // max_new_tokens reached (or the context is full)
  stop_string,  // a stop string completed (text ends before it)
  cancelled,    // the streaming callback returned false
};
const char* to_string(FinishReason reason);  // "stop", "length", "stop_string", "cancelled"

struct Usage {
  std::int64_t prompt_tokens = 0;      // whole prompt incl. image / video placeholder tokens
  std::int64_t completion_tokens = 0;  // generated tokens (incl. a final stop token)
  std::int64_t cached_tokens = 0;      // prompt tokens reused from a Chat's KV cache
  std::int64_t image_tokens = 0;       // of prompt_tokens: image placeholders
  std::int64_t video_tokens = 0;       // of prompt_tokens: video placeholders
};

struct Timings {
  double vision_ms = 0.0;        // media decoding + preprocessing + vision graph
  double prefill_ms = 0.0;       // embedding + decoder over the new prompt tokens
  double prefill_tokens_per_s = 0.0;
  double decode_ms = 0.0;        // every decode step after the first token
  double decode_tokens_per_s = 0.0;
  double ttft_ms = 0.0;          // request start -> first token chosen
  double total_ms = 0.0;
};

// A token and its log-probability (GenerateOptions::top_logprobs defines it).
struct TokenLogprob {
  std::int64_t token_id = 0;
  float logprob = 0.0f;
};

// The log-probabilities of one generated token.
struct TokenLogprobs {
  float logprob = 0.0f;            // of the chosen token
  std::vector<TokenLogprob> top;   // top_logprobs most likely tokens, most likely first
                                   // (equal logprobs: lower id first)
};

struct GenerateResult {
  std::string text;                     // generated text (stop string / stop token excluded)
  std::vector<std::int64_t> token_ids;  // generated ids
  std::vector<TokenLogprobs> logprobs;  // one per token_ids entry when top_logprobs >= 0
  FinishReason finish_reason = FinishReason::length;
  Usage usage;
  Timings timings;
};

// Receives each new piece of text (valid UTF-8, never empty) as it streams; return false
// to stop generating (finish_reason cancelled). Called on the generating thread.
using StreamCallback = std::function<bool(std::string_view piece)>;

// Generates the assistant's reply to `conversation` (HF chat template with the generation
// prompt). Throws q3vl::Error: limit (prompt + 1 token over the context length), io /
// format (unreadable or undecodable media: names it), unsupported (http media), usage
// (bad options), runtime (ONNX Runtime failure, naming the graph).
GenerateResult generate(const std::shared_ptr<const Model>& model,
                        const std::vector<text::Message>& conversation,
                        const GenerateOptions& options, const StreamCallback& on_text = {});

}  // namespace q3vl
