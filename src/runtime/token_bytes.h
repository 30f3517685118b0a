// TokenBytes: the bytes each token id contributes to the generated text, for the whole
// logits width (manifest vocab_size), built once per Model on first use.
//
// Byte-level BPE vocabularies (Qwen's) store a token as printable characters standing
// for bytes (GPT-2's bytes_to_unicode table: "Ġ" is 0x20); a token's bytes are those
// characters mapped back, so they may be part of a UTF-8 character. Added tokens give
// their content; special added tokens give none (generation decodes with
// skip_special_tokens), nor do ids the tokenizer does not know (logits padding).
// The decode stream (src/text) stays the source of streamed text; this table serves the
// json_object constraint and token texts for logprobs.
//
// Thread-safety: immutable once built; TokenBytes::of builds it at most once per Model
// (std::call_once) and may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace q3vl::text {
class Tokenizer;
}

namespace q3vl::runtime {

struct ModelParts;

class TokenBytes {
 public:
  // The table of `parts` (built on the first call; ~0.1 s for Qwen's 151k ids).
  static const TokenBytes& of(const ModelParts& parts);
  // Builds a table of `width` ids from `tokenizer` (tests use this directly).
  TokenBytes(const text::Tokenizer& tokenizer, std::int64_t width);

  std::int64_t size() const { return static_cast<std::int64_t>(offsets_.size()) - 1; }
  // Bytes of `id`; empty for special tokens and ids outside [0, size()).
  std::string_view bytes(std::int64_t id) const;
  bool special(std::int64_t id) const { return id >= 0 && id < size() && special_[static_cast<std::size_t>(id)]; }
  // Whether the bytes are non-empty, complete valid UTF-8, with no control character
  // (< 0x20), quote or backslash: text that stays inside a JSON string as it is (most of
  // a vocabulary; JsonConstraint skips validating these byte by byte inside strings).
  bool plain_text(std::int64_t id) const {
    return id >= 0 && id < size() && plain_[static_cast<std::size_t>(id)];
  }

 private:
  std::string data_;                    // every token's bytes, concatenated
  std::vector<std::uint32_t> offsets_;  // [size + 1] into data_
  std::vector<std::uint8_t> special_;
  std::vector<std::uint8_t> plain_;
};

// Where ModelParts keeps its table: built on first use, once.
struct LazyTokenBytes {
  std::once_flag once;
  std::unique_ptr<const TokenBytes> table;
};

}  // namespace q3vl::runtime
