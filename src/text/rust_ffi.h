// The C ABI of the Rust crate in src/text/rust (tokenizers + minijinja).
// Private to src/text: nothing outside this folder includes it. Kept in sync by
// hand with rust/src/{ffi,tokenizer,template}.rs; every function's contract is
// documented there. Summary:
// - Inputs are (pointer, length) byte ranges, never NUL-terminated.
// - Returned buffers belong to the caller: free with q3vl_text_bytes_free /
//   q3vl_text_ids_free (the C++ wrappers in rust_call.h do this).
// - Calls return Q3VL_TEXT_OK (0) or a code below; the error out-param then
//   holds a message (+ template line / input byte offset where known).
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

enum : std::int32_t {
  Q3VL_TEXT_OK = 0,
  Q3VL_TEXT_IO = 1,
  Q3VL_TEXT_FORMAT = 2,
  Q3VL_TEXT_INVALID_UTF8 = 3,
  Q3VL_TEXT_TEMPLATE_SYNTAX = 4,
  Q3VL_TEXT_TEMPLATE_RENDER = 5,
  Q3VL_TEXT_NOT_FOUND = 6,
  Q3VL_TEXT_INTERNAL = 7,
};

struct Q3vlTextBytes {
  std::uint8_t* ptr;
  std::size_t len;
};

struct Q3vlTextIds {
  std::uint32_t* ptr;
  std::size_t len;
};

struct Q3vlTextError {
  std::int32_t code;
  std::uint32_t line;
  std::uint64_t offset;
  Q3vlTextBytes message;
};

struct TextTokenizer;
struct DecodeStreamState;
struct TextTemplate;

void q3vl_text_bytes_free(Q3vlTextBytes bytes);
void q3vl_text_ids_free(Q3vlTextIds ids);

std::int32_t q3vl_tokenizer_load(const std::uint8_t* path, std::size_t path_len, TextTokenizer** out,
                                 Q3vlTextError* err);
void q3vl_tokenizer_free(TextTokenizer* tok);
std::int32_t q3vl_tokenizer_encode(const TextTokenizer* tok, const std::uint8_t* text, std::size_t text_len,
                                   bool parse_special, bool add_special, bool lossy, Q3vlTextIds* out, Q3vlTextError* err);
std::int32_t q3vl_tokenizer_decode(const TextTokenizer* tok, const std::uint32_t* ids, std::size_t n,
                                   bool skip_special, Q3vlTextBytes* out, Q3vlTextError* err);
std::int32_t q3vl_tokenizer_id_to_token(const TextTokenizer* tok, std::uint32_t id, Q3vlTextBytes* out);
std::int32_t q3vl_tokenizer_token_to_id(const TextTokenizer* tok, const std::uint8_t* token, std::size_t len,
                                        std::uint32_t* out);
std::size_t q3vl_tokenizer_vocab_size(const TextTokenizer* tok);
std::int32_t q3vl_tokenizer_added_tokens(const TextTokenizer* tok, Q3vlTextBytes* out, Q3vlTextError* err);

DecodeStreamState* q3vl_decode_stream_new(bool skip_special);
void q3vl_decode_stream_free(DecodeStreamState* stream);
std::int32_t q3vl_decode_stream_step(DecodeStreamState* stream, const TextTokenizer* tok, std::uint32_t id,
                                     Q3vlTextBytes* out, Q3vlTextError* err);
std::int32_t q3vl_decode_stream_flush(DecodeStreamState* stream, const TextTokenizer* tok, Q3vlTextBytes* out,
                                      Q3vlTextError* err);

using Q3vlStrftimeFn = std::size_t (*)(const std::uint8_t* format, std::size_t format_len, std::uint8_t* out,
                                       std::size_t cap);
std::int32_t q3vl_template_new(const std::uint8_t* name, std::size_t name_len, const std::uint8_t* source,
                               std::size_t source_len, Q3vlStrftimeFn strftime, TextTemplate** out,
                               Q3vlTextError* err);
void q3vl_template_free(TextTemplate* tmpl);
std::int32_t q3vl_template_render(const TextTemplate* tmpl, const std::uint8_t* context, std::size_t context_len,
                                  Q3vlTextBytes* out, Q3vlTextError* err);

}  // extern "C"
