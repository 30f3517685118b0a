// q3vl::text::Tokenizer — Hugging Face tokenizer.json (any model), encode and
// decode exactly as Python `tokenizers` does; DecodeStream for generation.
//
// The work is done by HF's own Rust crate `tokenizers` (src/text/rust); this
// header is the whole C++ contract. Ids equal Python `tokenizers` /
// transformers ids for the same text (checked on >= 10,000 strings by
// tests/text, goldens from tests/reference/make_text_goldens.py).
//
// Thread-safety: a loaded Tokenizer is immutable; encode/decode/lookups may be
// called from any number of threads at once. A DecodeStream is one generation's
// state: use it from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace q3vl::text {

using TokenId = std::uint32_t;

// What to do with text that is not valid UTF-8 (encode only accepts Unicode).
enum class InvalidUtf8 {
  // Throw q3vl::Error(format) naming the byte offset of the first bad byte
  // (the offset Python reports in UnicodeDecodeError.start).
  reject,
  // Replace each maximal invalid subsequence by U+FFFD first — the same text
  // Python's bytes.decode("utf-8", errors="replace") gives — then encode.
  replace,
};

struct EncodeOptions {
  // true: special/added tokens written in the text ("<|im_start|>") become
  // their ids, as HF does by default. false: they are encoded as plain text
  // (HF: `tokenizer.encode_special_tokens = True` / `split_special_tokens=True`).
  bool parse_special_tokens = true;
  // Let the tokenizer's post-processor add its special tokens (BOS/EOS for models
  // that have them; Qwen's adds none). HF's `add_special_tokens`, default true.
  bool add_special_tokens = true;
  InvalidUtf8 invalid_utf8 = InvalidUtf8::reject;
};

// One entry of the tokenizer's added vocabulary (tokenizer.json "added_tokens").
struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool special = false;
};

// Special-token strings from tokenizer_config.json (a string or an AddedToken
// object {"content": ...}); absent or null fields stay empty. These are what
// transformers' `special_tokens_map` holds and what chat templates see as
// `eos_token`, `pad_token`, ...
struct SpecialTokens {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> unk_token;
  std::optional<std::string> sep_token;
  std::optional<std::string> pad_token;
  std::optional<std::string> cls_token;
  std::optional<std::string> mask_token;
  std::vector<std::string> additional_special_tokens;
};

// Reads the special tokens of `tokenizer_config.json`. Throws q3vl::Error(io)
// if the file cannot be read, (format) for malformed JSON or a field of the
// wrong type (message names the file and field).
SpecialTokens load_special_tokens(const std::filesystem::path& tokenizer_config_json);

class DecodeStream;

class Tokenizer {
 public:
  // `path` is a directory holding tokenizer.json (and optionally
  // tokenizer_config.json, for special_tokens()) — an HF checkpoint or a q3vl
  // package — or a tokenizer.json file itself. Loading the Qwen tokenizer
  // takes ~0.3 s: load once and share. Throws q3vl::Error: io (missing or
  // unreadable file), format (not a valid tokenizer.json / tokenizer_config.json).
  static Tokenizer load(const std::filesystem::path& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text` (UTF-8). The tokenizer's normalizer applies (Qwen: NFC).
  // Throws q3vl::Error(format) for invalid UTF-8 under InvalidUtf8::reject.
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const;

  // UTF-8 text of `ids`. As in HF, ids with no token are skipped; special
  // tokens are kept unless `skip_special_tokens`. Note decode(encode(s)) is
  // NFC(s) for tokenizers that normalize to NFC, not always s.
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

  // The vocabulary entry of `id` (byte-level form, e.g. "Ġhello"), or nullopt.
  std::optional<std::string> id_to_token(TokenId id) const;
  // The id of a vocabulary entry or added token, or nullopt.
  std::optional<TokenId> token_to_id(std::string_view token) const;
  // Number of ids including added tokens (Python `len(tokenizer)`; 151669 for Qwen3).
  std::size_t vocab_size() const;
  // Added tokens ordered by id.
  const std::vector<AddedToken>& added_tokens() const;
  // From tokenizer_config.json next to tokenizer.json; all empty if there is none.
  const SpecialTokens& special_tokens() const;
  // The tokenizer.json this was loaded from (for messages).
  const std::filesystem::path& file() const;

  // A new streaming decoder over this tokenizer. The stream keeps a pointer to
  // this Tokenizer's loaded state: the Tokenizer (or whatever it was moved
  // into) must outlive the stream.
  DecodeStream decode_stream(bool skip_special_tokens = false) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class DecodeStream;
};

// Incremental detokenizer for generation: feed ids one at a time, get text as
// soon as it is complete. Every returned piece is valid UTF-8; bytes of a
// character split across tokens are held back until it completes. Concatenating
// every step() and the final flush() gives exactly Tokenizer::decode of all ids.
// Move-only; one thread at a time.
class DecodeStream {
 public:
  DecodeStream(DecodeStream&&) noexcept;
  DecodeStream& operator=(DecodeStream&&) noexcept;
  ~DecodeStream();

  // Adds one id; returns the newly completed text ("" if nothing completed).
  // Text ending in U+FFFD is held back too (it may be an incomplete character).
  std::string step(TokenId id);
  // Call once generation ends (EOS, stop string, token limit): returns whatever
  // the full decode has beyond the text already returned — held-back bytes come
  // out as U+FFFD, exactly as a full decode shows them. Steps may continue after.
  std::string flush();

 private:
  struct State;
  DecodeStream(const Tokenizer::Impl* tokenizer, bool skip_special_tokens);
  // Not owned: the Tokenizer's heap state, stable across moves of the Tokenizer,
  // which outlives the stream (see Tokenizer::decode_stream).
  const Tokenizer::Impl* tokenizer_;
  std::unique_ptr<State> state_;
  friend class Tokenizer;
};

}  // namespace q3vl::text
