#include "server/token_text.h"

#include <algorithm>

namespace q3vl::server {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other
// 68 bytes take the code points 256, 257, ... in byte order.
TokenTexts::TokenTexts(const text::Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  byte_of_char_.fill(-1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    byte_of_char_[static_cast<std::size_t>(printable ? b : next++)] = b;
  }
}

std::vector<std::uint8_t> TokenTexts::bytes(std::int64_t id) const {
  const auto token_id = static_cast<text::TokenId>(id);
  const auto& added = tokenizer_.added_tokens();
  const auto it = std::find_if(added.begin(), added.end(), [&](const text::AddedToken& t) { return t.id == token_id; });
  const std::optional<std::string> entry = tokenizer_.id_to_token(token_id);
  if (it != added.end() || !entry) {
    const std::string s = it != added.end() ? it->content : "";
    return {s.begin(), s.end()};
  }
  // Decode the entry's UTF-8 code points and map each back to its byte.
  std::vector<std::uint8_t> out;
  const std::string& s = *entry;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = c;
    std::size_t len = 1;
    if (c >= 0xC0 && c < 0xE0 && i + 1 < s.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      len = 2;
    }
    const int byte = cp < byte_of_char_.size() ? byte_of_char_[cp] : -1;
    if (byte < 0) {  // not a byte-level entry: its text is its bytes
      return {s.begin(), s.end()};
    }
    out.push_back(static_cast<std::uint8_t>(byte));
    i += len;
  }
  return out;
}

std::string TokenTexts::text(std::int64_t id) const {
  const text::TokenId ids[] = {static_cast<text::TokenId>(id)};
  return tokenizer_.decode(ids);
}

}  // namespace q3vl::server
