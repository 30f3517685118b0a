// Splits a Qwen3 reply, as it streams, into OpenAI's three channels:
//   reasoning_content   the `<think> ... </think>` part (Thinking checkpoints; vLLM's
//                       and llama-server's field name)
//   content             the visible answer
//   tool_calls          each `<tool_call>{"name": ..., "arguments": ...}</tool_call>` block
//                       (Qwen3's chat-template format) as one call
// Text that might be the start of a tag (or whitespace that trimming may drop) is held
// back until the next feed() decides it; finish() releases the rest. The concatenation
// of every delta equals the one-shot parse of the whole text (tested).
//
// Trimming, as the templates render these parts: whitespace right after `<think>` /
// before `</think>` and right after `</think>` / `</tool_call>` is dropped; so is
// whitespace before a `<tool_call>`, and content that is only whitespace when the
// reply made tool calls. A `<tool_call>` block whose body is not a JSON object with a
// string "name" stays in content verbatim (the model's text is never lost).
//
// Thread-safety: one parser per request, one thread at a time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace q3vl::server {

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON text of "arguments" (a string argument is kept as its text)
};

struct OutputDelta {
  std::string reasoning;
  std::string content;
  std::vector<ParsedToolCall> tool_calls;  // completed calls, in order

  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

class OutputParser {
 public:
  // `starts_in_reasoning`: the prompt ended inside an open `<think>` (the Thinking
  // templates' generation prompt), so the reply begins as reasoning. Otherwise a reply
  // that starts with `<think>` enters reasoning too. `parse_tool_calls`: extract
  // `<tool_call>` blocks (the request gave tools); false leaves them in content.
  OutputParser(bool starts_in_reasoning, bool parse_tool_calls);

  OutputDelta feed(std::string_view text);
  OutputDelta finish();
  int tool_calls() const { return tool_calls_; }

 private:
  enum class Mode { start, reasoning, content, tool_call };
  void run(OutputDelta& out, bool final);
  void emit(OutputDelta& out, std::string_view text, bool final);
  void switch_to(OutputDelta& out, Mode mode);

  Mode mode_;
  bool parse_tool_calls_;
  std::string pending_;   // undecided text of the current mode
  std::string held_ws_;   // trailing whitespace of the current channel, not yet emitted
  bool trim_leading_ = true;  // drop whitespace at the start of the current channel
  int tool_calls_ = 0;
};

// One-shot parse of a whole reply.
OutputDelta parse_output(std::string_view text, bool starts_in_reasoning, bool parse_tool_calls);

}  // namespace q3vl::server
