// Splits a Qwen3 reply, as it streams, into OpenAI's three channels:
//   reasoning_content   the `<think> ... </think>` part (Thinking checkpoints; vLLM's
//                       and llama-server's field name)
//   content             the visible answer
//   tool_calls          each `<tool_call>{"name": ..., "arguments": ...}</tool_call>` block
//                       (Qwen3's chat-template format) as one call
// Text that might be the start of a tag (or whitespace that trimming may drop) is held
// back until the next feed() decides it; finish() releases the rest. accumulate() over
// every delta equals parse_output() of the whole text (tested on every split).
//
// Tool calls stream as OpenAI deltas: once `{"name": "<name>", "arguments": ` has been
// seen, the call starts (a delta with its name) and the arguments' JSON text follows in
// fragments as the model writes it (the wrapper's closing `}` held back). A block in
// another shape (other key order, arguments given as a JSON string) is parsed whole when
// `</tool_call>` arrives. A block that never reaches a call - no such header and not a
// JSON object with a string "name" - stays in content verbatim (the model's text is
// never lost).
//
// Trimming, as the templates render these parts: whitespace right after `<think>` /
// before `</think>` and right after `</think>` / `</tool_call>` is dropped; so is
// whitespace before a `<tool_call>`, and content that is only whitespace when the
// reply made tool calls.
//
// Thread-safety: one parser per request, one thread at a time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace q3vl::server {

// A piece of one tool call: the first piece of call `index` carries its name, later
// ones only more arguments text.
struct ToolCallDelta {
  int index = 0;
  std::string name;       // non-empty exactly on the call's first delta
  std::string arguments;  // the next fragment of the arguments' JSON text
};

struct OutputDelta {
  std::string reasoning;
  std::string content;
  std::vector<ToolCallDelta> tool_calls;

  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON text (a string-valued "arguments" is kept as its text)
};

// A whole reply.
struct ParsedOutput {
  std::string reasoning;
  std::string content;
  std::vector<ParsedToolCall> tool_calls;
};

// Appends a delta to what came before it.
void accumulate(ParsedOutput& output, const OutputDelta& delta);

class OutputParser {
 public:
  // `starts_in_reasoning`: the prompt ended inside an open `<think>` (the Thinking
  // templates' generation prompt), so the reply begins as reasoning. Otherwise a reply
  // that starts with `<think>` enters reasoning too. `parse_tool_calls`: extract
  // `<tool_call>` blocks (the request gave tools); false leaves them in content.
  OutputParser(bool starts_in_reasoning, bool parse_tool_calls);

  OutputDelta feed(std::string_view text);
  OutputDelta finish();
  int tool_calls() const { return tool_calls_; }  // calls started so far

 private:
  enum class Mode { start, reasoning, content, tool_call };
  enum class CallPhase { header, arguments, whole };
  void run(OutputDelta& out, bool final);
  bool run_tool_call(OutputDelta& out, bool final);  // false: wait for more text
  void emit(OutputDelta& out, std::string_view text, bool final);
  void switch_to(Mode mode);
  void fall_back_to_content(OutputDelta& out, const std::string& raw);

  Mode mode_;
  bool parse_tool_calls_;
  CallPhase phase_ = CallPhase::header;
  std::string pending_;   // undecided text of the current mode
  std::string held_ws_;   // trailing whitespace of the current channel, not yet emitted
  bool trim_leading_ = true;  // drop whitespace at the start of the current channel
  int tool_calls_ = 0;
};

// One-shot parse of a whole reply.
ParsedOutput parse_output(std::string_view text, bool starts_in_reasoning, bool parse_tool_calls);

}  // namespace q3vl::server
