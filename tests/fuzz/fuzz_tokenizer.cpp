// The real Qwen3 tokenizer through the Rust C ABI: encode arbitrary bytes (strict and
// replacing invalid UTF-8), then stream-decode an arbitrary id sequence (ids past the
// vocabulary included). Every decoded piece must be valid UTF-8, and the streamed
// pieces plus flush() must equal the full decode (DecodeStream's contract).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "harness.h"
#include "q3vl/tokenizer.h"

namespace {

const q3vl::text::Tokenizer& tokenizer() {
  static const auto t = q3vl::text::Tokenizer::load(Q3VL_TOKENIZER_JSON);
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto& tok = tokenizer();
  q3vl::text::EncodeOptions options;
  options.parse_special_tokens = in.ConsumeBool();
  options.add_special_tokens = in.ConsumeBool();
  options.invalid_utf8 = in.ConsumeBool() ? q3vl::text::InvalidUtf8::replace : q3vl::text::InvalidUtf8::reject;
  const bool skip_special = in.ConsumeBool();
  const std::string text = in.ConsumeRandomLengthString(512);
  q3vl::fuzz::expect_clean([&] {
    for (const auto id : tok.encode(text, options)) q3vl::fuzz::require(id < tok.vocab_size(), "encoded id in vocab");
  });

  std::vector<q3vl::text::TokenId> ids;
  const auto limit = static_cast<q3vl::text::TokenId>(tok.vocab_size() + 8);
  while (in.remaining_bytes() >= 3 && ids.size() < 256) {
    ids.push_back(in.ConsumeIntegralInRange<q3vl::text::TokenId>(0, limit));
  }
  q3vl::fuzz::expect_clean([&] {
    auto stream = tok.decode_stream(skip_special);
    std::string streamed;
    for (const auto id : ids) {
      const std::string piece = stream.step(id);
      q3vl::fuzz::require(q3vl::fuzz::is_valid_utf8(piece), "stream step is valid UTF-8");
      streamed += piece;
    }
    const std::string tail = stream.flush();
    q3vl::fuzz::require(q3vl::fuzz::is_valid_utf8(tail), "stream flush is valid UTF-8");
    streamed += tail;
    const std::string full = tok.decode(ids, skip_special);
    q3vl::fuzz::require(q3vl::fuzz::is_valid_utf8(full), "decode is valid UTF-8");
    q3vl::fuzz::require(streamed == full, "streamed pieces + flush == full decode");
  });
  return 0;
}
