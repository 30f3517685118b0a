// POST /v1/chat/completions body (OpenAI shape) -> a validated request for the scheduler.
//
// Fields (OpenAI names): model, messages, stream, stream_options.include_usage,
// max_tokens / max_completion_tokens, temperature, top_p, top_k, min_p, seed,
// presence_penalty, frequency_penalty, repetition_penalty, stop, n (must be 1),
// logprobs, top_logprobs, response_format ({"type": "text" | "json_object"}), tools,
// tool_choice ("auto" | "none" | "required" | {"type": "function", "function": {"name"}}:
// the last two force a call, GenerateOptions::tool_call_names), user (ignored). Any other key is refused, naming it.
// Sampling fields not given keep the package's generation_config.json defaults;
// temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "q3vl/generate.h"
#include "q3vl/messages.h"

namespace q3vl::server {

struct ChatCompletionRequest {
  std::string model;  // "" when the client sent none
  std::vector<text::Message> messages;
  GenerateOptions options;     // defaults + request fields; tools in options.tools_json
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  int top_logprobs = 0;        // 0..20, with logprobs
  bool parse_tool_calls = false;  // tools given and tool_choice is not "none"
                                  // (options.tool_call_names: a call is forced)
};

// Largest JSON nesting depth accepted in a body (deeper: 400 before parsing, so a
// hostile body cannot exhaust the stack anywhere downstream).
inline constexpr int kMaxJsonDepth = 64;

// Parses and validates `body`. `defaults` are the model's GenerateOptions;
// `default_max_tokens` applies when neither max_tokens nor max_completion_tokens is
// given. Throws ApiError (400) naming the field: malformed JSON, wrong types,
// values out of range, unknown keys, unsupported features.
ChatCompletionRequest parse_chat_request(std::string_view body, const GenerateOptions& defaults,
                                         std::int64_t default_max_tokens);

}  // namespace q3vl::server
