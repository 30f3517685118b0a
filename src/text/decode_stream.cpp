// DecodeStream: tokenizers' incremental decoder (DecodeStream::step) plus the
// flush it lacks (docs/reference/text-facts.md: it holds back text ending in
// U+FFFD forever, so the end of a generation must emit what the full decode has
// beyond the streamed text). The Rust state holds no tokenizer reference; the
// tokenizer handle is passed in on each call.
#include "q3vl/error.h"
#include "q3vl/tokenizer.h"
#include "text/rust_call.h"
#include "text/tokenizer_impl.h"

namespace q3vl::text {

struct DecodeStream::State {
  rust::DecodeStreamHandle handle;
};

DecodeStream::DecodeStream(const Tokenizer::Impl* tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), state_(std::make_unique<State>()) {
  state_->handle.reset(q3vl_decode_stream_new(skip_special_tokens));
}

DecodeStream::DecodeStream(DecodeStream&&) noexcept = default;
DecodeStream& DecodeStream::operator=(DecodeStream&&) noexcept = default;
DecodeStream::~DecodeStream() = default;

std::string DecodeStream::step(TokenId id) {
  Q3vlTextBytes out{};
  Q3vlTextError err{};
  rust::check(q3vl_decode_stream_step(state_->handle.get(), tokenizer_->handle.get(), id, &out, &err), err,
              {tokenizer_->file.string(), "decode_stream"});
  return rust::take_string(out);
}

std::string DecodeStream::flush() {
  Q3vlTextBytes out{};
  Q3vlTextError err{};
  rust::check(q3vl_decode_stream_flush(state_->handle.get(), tokenizer_->handle.get(), &out, &err), err,
              {tokenizer_->file.string(), "decode_stream"});
  return rust::take_string(out);
}

}  // namespace q3vl::text
