// OpenAI response shapes for /v1/chat/completions: the whole `chat.completion` object
// and the `chat.completion.chunk` objects of a stream (one per SSE event).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "q3vl/generate.h"
#include "server/output_parser.h"

namespace q3vl::server {

using Json = nlohmann::ordered_json;

// What is fixed for one completion: its id ("chatcmpl-..."), creation time and model.
struct CompletionHeader {
  std::string id;
  std::int64_t created = 0;  // unix seconds
  std::string model;
};

// One token's logprobs entry (OpenAI `choices[0].logprobs.content[i]`).
struct LogprobEntry {
  std::string token;                 // its text (bytes that are not whole UTF-8 characters shown as U+FFFD)
  std::vector<std::uint8_t> bytes;   // its exact bytes
  float logprob = 0.0f;
  struct Alternative {
    std::string token;
    std::vector<std::uint8_t> bytes;
    float logprob = 0.0f;
  };
  std::vector<Alternative> top;      // most likely first
};

// `bytes` as text, each maximal invalid UTF-8 subsequence replaced by U+FFFD (the
// WHATWG / Python errors="replace" rule): logprobs' "token" for a token that holds part
// of a character.
std::string utf8_lossy(std::string_view bytes);

// "stop" / "length" / "tool_calls" (a reply that made tool calls and stopped by itself).
const char* finish_reason_name(FinishReason reason, bool made_tool_calls);

// A tool call's id: "call_<completion id suffix>_<index>".
std::string tool_call_id(const CompletionHeader& header, int index);
Json usage_json(const Usage& usage);
Json logprobs_json(const std::vector<LogprobEntry>& tokens);

// The non-streamed response.
Json completion_json(const CompletionHeader& header, const ParsedOutput& reply, const GenerateResult& result,
                     const std::optional<std::vector<LogprobEntry>>& logprobs);

// One stream chunk whose choice carries `delta` (with `logprobs` for its tokens, when
// asked) and `finish_reason` (null until the last).
Json chunk_json(const CompletionHeader& header, Json delta, const std::optional<std::vector<LogprobEntry>>& logprobs,
                const char* finish_reason, bool include_usage_null);
// The final usage chunk of stream_options.include_usage (empty choices).
Json usage_chunk_json(const CompletionHeader& header, const Usage& usage);
// The delta of a parsed piece of output (reasoning_content / content / tool_calls: a
// call's first piece carries index, id, type and function.name, later pieces index and
// function.arguments only, as OpenAI streams them).
Json delta_json(const CompletionHeader& header, const OutputDelta& delta);

// Compact JSON text; invalid UTF-8 in strings (never from the tokenizer, but possibly
// echoed from a request) becomes U+FFFD instead of an exception.
std::string json_text(const Json& value);

// "data: <json>\n\n" and the closing "data: [DONE]\n\n" of an SSE stream.
std::string sse_event(const Json& data);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace q3vl::server
