// The text and exact bytes of single token ids, for OpenAI logprobs ("token", "bytes").
// A byte-level BPE token (Qwen's "Ġhello") maps back to bytes through GPT-2's fixed
// byte <-> character table; an added token's bytes are its content. A token holding
// part of a UTF-8 character has those raw bytes in `bytes` and U+FFFD in its text, as
// OpenAI reports it.
// Thread-safety: immutable after construction.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "q3vl/tokenizer.h"

namespace q3vl::server {

class TokenTexts {
 public:
  // `tokenizer` must outlive this object.
  explicit TokenTexts(const text::Tokenizer& tokenizer);
  std::vector<std::uint8_t> bytes(std::int64_t id) const;
  std::string text(std::int64_t id) const;

 private:
  const text::Tokenizer& tokenizer_;
  std::array<int, 512> byte_of_char_{};  // code point (< 512) -> byte, -1 if none
};

}  // namespace q3vl::server
