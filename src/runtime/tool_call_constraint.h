// ToolCallConstraint: masks a vocabulary so the reply is exactly one tool call in the
// format Qwen3's chat templates render an assistant's tool_calls (and tell the model to
// write, in the tools system prompt):
//
//   <tool_call>\n{"name": "<one of the names>", "arguments": <JSON object>}\n</tool_call>
//
// (GenerateOptions::tool_call_names: OpenAI tool_choice "required" gives every tool's
// name, a named tool_choice one name.) The arguments are checked by the json_object
// machine (JsonMachine), so they always parse as one object.
//
// `<tool_call>` and `</tool_call>` are added tokens of Qwen's vocabulary: a tokenizer
// never spells their text with other tokens, so neither may generation - each must be
// that one token (when the vocabulary has it; otherwise its text goes byte by byte like
// the rest). Every other part is matched byte by byte against the tokens' bytes
// (TokenBytes), so a token may span two parts (`"}}\n` closes the arguments and starts
// the suffix). After `</tool_call>` only a stop token may follow.
//
// Budget, as JsonConstraint's: a token is allowed only if the call can still be finished
// (and a stop token follow, when there are stop ids) within the tokens left after it,
// counting one token per byte and one per added token still to come. A random-weight
// model that rambles inside the arguments is thus steered to close them in time.
//
// Not thread-safe; one per generation. The TokenBytes table outlives it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/json_constraint.h"
#include "runtime/token_constraint.h"

namespace q3vl::text {
class Tokenizer;
}

namespace q3vl::runtime {

// The fixed parts of the call (immutable; shared by the machine's copies).
struct ToolCallFormat {
  std::int64_t open_token = -1;      // id of `<tool_call>`, or -1: spelled in `headers`
  std::vector<std::string> headers;  // per name, sorted: [`<tool_call>`]`\n{"name": "<name>", "arguments": `
  std::string tail;                  // `}\n` [+ `</tool_call>` when it has no token]
  std::int64_t close_token = -1;     // id of `</tool_call>`, or -1
};

// Throws q3vl::Error(usage) naming tool_call_names[i] for an empty name or one with '"',
// '\\' or a control character (it would not stay one JSON string in the call).
void check_tool_call_names(const std::vector<std::string>& names);

// Builds the format for `names` over `tokenizer`'s added tokens. Throws
// q3vl::Error(usage) naming tool_call_names for an empty list or a bad name (above).
ToolCallFormat tool_call_format(const text::Tokenizer& tokenizer, const std::vector<std::string>& names);

// Where generation is in the call: a small value, copied to try each token.
class ToolCallMachine {
 public:
  explicit ToolCallMachine(const ToolCallFormat& format);

  // Consumes one token (`id` with its `bytes`) if the text stays a prefix of a valid
  // call; otherwise returns false (state unspecified: call on a copy).
  bool feed(std::int64_t id, std::string_view bytes);
  bool complete() const { return phase_ == Phase::done; }
  // Tokens a shortest completion still needs (one per byte, one per added token).
  int closing_cost() const;
  // Inside a JSON string of the arguments with nothing pending (JsonMachine's sense).
  bool in_plain_string() const { return phase_ == Phase::arguments && json_.in_plain_string(); }

 private:
  enum class Phase : std::uint8_t { open, header, arguments, tail, close, done };
  bool feed_byte(unsigned char byte);
  void enter(Phase phase);  // skips token phases the format has no token for

  const ToolCallFormat* format_;  // outlives every copy (owned by the constraint)
  Phase phase_ = Phase::open;
  std::uint32_t lo_ = 0, hi_ = 0;  // headers still matching what was written: [lo_, hi_)
  std::uint32_t offset_ = 0;       // bytes written of the header / tail
  JsonMachine json_;
};

class ToolCallConstraint final : public TokenConstraint {
 public:
  ToolCallConstraint(const TokenBytes& tokens, ToolCallFormat format, std::vector<std::int64_t> stop_token_ids);
  ToolCallConstraint(const ToolCallConstraint&) = delete;
  ToolCallConstraint& operator=(const ToolCallConstraint&) = delete;

  void mask(std::vector<std::uint8_t>& allowed, std::int64_t tokens_left) const override;
  void accept(std::int64_t id) override;
  bool complete() const override { return machine_.complete(); }

 private:
  const TokenBytes& tokens_;  // owned by the Model's parts, which outlive every generation
  ToolCallFormat format_;
  std::vector<std::int64_t> stops_;
  ToolCallMachine machine_;  // points at format_: the constraint is neither copied nor moved
};

}  // namespace q3vl::runtime
