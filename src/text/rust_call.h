// C++ side of the Rust boundary: owning wrappers for the buffers the crate
// returns, and the translation of its error codes into q3vl::Error.
// Private to src/text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/rust_ffi.h"

namespace q3vl::text::rust {

// Takes ownership of a returned buffer and copies it out (the crate's buffers
// never outlive the call that receives them).
std::string take_string(Q3vlTextBytes bytes);
std::vector<std::uint32_t> take_ids(Q3vlTextIds ids);

inline const std::uint8_t* bytes_of(std::string_view s) {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

// Context for turning a failed call into q3vl::Error: which file or input the
// call was about, so the message names it.
struct CallSite {
  std::string file;   // e.g. ".../tokenizer.json", "chat_template.jinja", "text"
  std::string field;  // e.g. "encode" ("" if none)
};

// Throws q3vl::Error when `code` is not Q3VL_TEXT_OK; frees err.message either way.
// Kinds: io, format (bad file, invalid UTF-8, template syntax/render errors), runtime.
void check(std::int32_t code, Q3vlTextError& err, const CallSite& site);

struct TokenizerDeleter {
  void operator()(TextTokenizer* p) const { q3vl_tokenizer_free(p); }
};
struct DecodeStreamDeleter {
  void operator()(DecodeStreamState* p) const { q3vl_decode_stream_free(p); }
};
struct TemplateDeleter {
  void operator()(TextTemplate* p) const { q3vl_template_free(p); }
};
using TokenizerHandle = std::unique_ptr<TextTokenizer, TokenizerDeleter>;
using DecodeStreamHandle = std::unique_ptr<DecodeStreamState, DecodeStreamDeleter>;
using TemplateHandle = std::unique_ptr<TextTemplate, TemplateDeleter>;

}  // namespace q3vl::text::rust
