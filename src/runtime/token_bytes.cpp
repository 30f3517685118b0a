#include "runtime/token_bytes.h"

#include <array>
#include <unordered_map>

#include "q3vl/tokenizer.h"
#include "runtime/model_parts.h"

namespace q3vl::runtime {
namespace {

// GPT-2's bytes_to_unicode (HF tokenizers' ByteLevel): printable Latin-1 bytes stand for
// themselves, the other 68 bytes for code points 256, 257, ... in byte order. Inverted:
// code point -> byte.
std::unordered_map<char32_t, std::uint8_t> byte_level_inverse() {
  std::unordered_map<char32_t, std::uint8_t> inverse;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    inverse[printable ? static_cast<char32_t>(b) : next++] = static_cast<std::uint8_t>(b);
  }
  return inverse;
}

// Decodes one UTF-8 code point at `i` (advancing it); false if malformed.
bool next_code_point(std::string_view s, std::size_t& i, char32_t& cp) {
  const auto lead = static_cast<unsigned char>(s[i]);
  const std::size_t extra = lead < 0x80 ? 0 : lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 4;
  if (extra == 4 || i + extra >= s.size()) return false;
  cp = extra == 0 ? lead : lead & (0x3Fu >> extra);
  for (std::size_t k = 1; k <= extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  i += extra + 1;
  return true;
}

// Complete, valid UTF-8 (RFC 3629: no overlong forms, surrogates or code points above
// U+10FFFF) with no control character, '"' or '\\'.
bool is_plain_text(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      if (b < 0x20 || b == '"' || b == '\\') return false;
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) low = 0xA0;
      if (b == 0xED) high = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) low = 0x90;
      if (b == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // a character cut off at the end
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (c < (k == 1 ? low : 0x80) || c > (k == 1 ? high : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

TokenBytes::TokenBytes(const text::Tokenizer& tokenizer, std::int64_t width) {
  static const auto inverse = byte_level_inverse();
  std::unordered_map<std::int64_t, const text::AddedToken*> added;
  for (const text::AddedToken& t : tokenizer.added_tokens()) added[t.id] = &t;
  offsets_.reserve(static_cast<std::size_t>(width) + 1);
  special_.assign(static_cast<std::size_t>(width), 0);
  offsets_.push_back(0);
  for (std::int64_t id = 0; id < width; ++id) {
    if (auto a = added.find(id); a != added.end()) {
      if (a->second->special) {
        special_[static_cast<std::size_t>(id)] = 1;
      } else {
        data_ += a->second->content;
      }
    } else if (const auto token = tokenizer.id_to_token(static_cast<text::TokenId>(id))) {
      std::string bytes;
      bool byte_level = true;
      for (std::size_t i = 0; i < token->size() && byte_level;) {
        char32_t cp = 0;
        const auto b = next_code_point(*token, i, cp) ? inverse.find(cp) : inverse.end();
        if (b == inverse.end()) byte_level = false;
        else bytes += static_cast<char>(b->second);
      }
      // Not byte-level form: the tokenizer's own decode of the single id.
      if (!byte_level) {
        const text::TokenId one[1] = {static_cast<text::TokenId>(id)};
        bytes = tokenizer.decode(one);
      }
      data_ += bytes;
    }
    offsets_.push_back(static_cast<std::uint32_t>(data_.size()));
  }
  plain_.resize(static_cast<std::size_t>(width));
  for (std::int64_t id = 0; id < width; ++id) plain_[static_cast<std::size_t>(id)] = is_plain_text(bytes(id)) ? 1 : 0;
}

const TokenBytes& TokenBytes::of(const ModelParts& parts) {
  std::call_once(parts.token_bytes.once, [&parts] {
    parts.token_bytes.table = std::make_unique<const TokenBytes>(parts.tokenizer, parts.manifest.vocab_size);
  });
  return *parts.token_bytes.table;
}

std::string_view TokenBytes::bytes(std::int64_t id) const {
  if (id < 0 || id >= size()) return {};
  const auto i = static_cast<std::size_t>(id);
  return std::string_view(data_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
}

}  // namespace q3vl::runtime
