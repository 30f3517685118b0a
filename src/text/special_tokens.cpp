// load_special_tokens: the special-token fields of tokenizer_config.json, as
// transformers reads them into `special_tokens_map` (a value is a string or an
// AddedToken-shaped object whose "content" is the string).
#include <fstream>
#include <sstream>

#include "io/json_file.h"

#include "q3vl/error.h"
#include "q3vl/tokenizer.h"

namespace q3vl::text {
namespace {

std::optional<std::string> token_field(const io::Json& config, const char* key, const std::string& file) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
    throw_error(ErrorKind::format, file, std::string(key) + ".content", "string", "missing or not a string");
  }
  throw_error(ErrorKind::format, file, key, "string, {\"content\": string} or null", it->type_name());
}

}  // namespace

SpecialTokens load_special_tokens(const std::filesystem::path& tokenizer_config_json) {
  const std::string file = tokenizer_config_json.string();
  std::ifstream in(tokenizer_config_json, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, file, "cannot open file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const io::Json config = io::parse_json(buffer.str(), file);
  if (!config.is_object()) throw_error(ErrorKind::format, file, "", "a JSON object", config.type_name());

  SpecialTokens tokens;
  tokens.bos_token = token_field(config, "bos_token", file);
  tokens.eos_token = token_field(config, "eos_token", file);
  tokens.unk_token = token_field(config, "unk_token", file);
  tokens.sep_token = token_field(config, "sep_token", file);
  tokens.pad_token = token_field(config, "pad_token", file);
  tokens.cls_token = token_field(config, "cls_token", file);
  tokens.mask_token = token_field(config, "mask_token", file);
  if (auto it = config.find("additional_special_tokens"); it != config.end() && !it->is_null()) {
    if (!it->is_array()) {
      throw_error(ErrorKind::format, file, "additional_special_tokens", "array", it->type_name());
    }
    for (std::size_t i = 0; i < it->size(); ++i) {
      const auto& entry = (*it)[i];
      const std::string field = "additional_special_tokens[" + std::to_string(i) + "]";
      if (entry.is_string()) {
        tokens.additional_special_tokens.push_back(entry.get<std::string>());
      } else if (entry.is_object() && entry.contains("content") && entry["content"].is_string()) {
        tokens.additional_special_tokens.push_back(entry["content"].get<std::string>());
      } else {
        throw_error(ErrorKind::format, file, field, "string or {\"content\": string}", entry.type_name());
      }
    }
  }
  return tokens;
}

}  // namespace q3vl::text
