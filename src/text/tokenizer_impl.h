// The state behind q3vl::text::Tokenizer, shared by tokenizer.cpp and
// decode_stream.cpp (a stream steps with its tokenizer's Rust handle).
#pragma once

#include <filesystem>
#include <vector>

#include "q3vl/tokenizer.h"
#include "text/rust_call.h"

namespace q3vl::text {

struct Tokenizer::Impl {
  rust::TokenizerHandle handle;
  std::filesystem::path file;
  std::vector<AddedToken> added_tokens;
  SpecialTokens special_tokens;
};

}  // namespace q3vl::text
