// TokenConstraint: what Sequence asks of a constrained-decoding mode (GenerateOptions
// json_object, tool_call_names): each step, mask() says which ids may come next, and
// accept() advances over the chosen one. Implementations: JsonConstraint
// (json_constraint.h), ToolCallConstraint (tool_call_constraint.h).
//
// Not thread-safe; one per generation.
#pragma once

#include <cstdint>
#include <vector>

namespace q3vl::runtime {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // allowed[id] = 1 for every id that may come next ([vocab] entries, for the sampler),
  // when `tokens_left` tokens (this one included) may still be generated. Throws
  // q3vl::Error(runtime) when no token is allowed.
  virtual void mask(std::vector<std::uint8_t>& allowed, std::int64_t tokens_left) const = 0;
  // Advances over the chosen token. Throws q3vl::Error(runtime) for a token mask() refused.
  virtual void accept(std::int64_t id) = 0;
  // The constrained text is whole: only a stop token may follow (with no stop ids,
  // generation ends here).
  virtual bool complete() const = 0;
};

}  // namespace q3vl::runtime
