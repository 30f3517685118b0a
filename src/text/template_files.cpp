#include "text/template_files.h"

#include <fstream>
#include <optional>
#include <sstream>

#include "io/json_file.h"

#include "q3vl/error.h"

namespace q3vl::text {
namespace {

std::optional<std::string> read_if_exists(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

TemplateFile find_chat_template(const std::filesystem::path& model_dir) {
  const auto legacy = model_dir / "chat_template.json";
  if (auto text = read_if_exists(legacy)) {
    const auto json = io::parse_json(*text, legacy.string());
    const auto it = json.is_object() ? json.find("chat_template") : json.end();
    if (it == json.end() || !it->is_string()) {
      throw_error(ErrorKind::format, legacy.string(), "chat_template", "string",
                  it == json.end() ? "missing" : it->type_name());
    }
    return {it->get<std::string>(), legacy.string()};
  }
  const auto jinja = model_dir / "chat_template.jinja";
  if (auto text = read_if_exists(jinja)) return {std::move(*text), jinja.string()};

  const auto config = model_dir / "tokenizer_config.json";
  if (auto text = read_if_exists(config)) {
    const auto json = io::parse_json(*text, config.string());
    const auto it = json.is_object() ? json.find("chat_template") : json.end();
    const std::string name = config.string() + "#chat_template";
    if (it != json.end() && it->is_string()) return {it->get<std::string>(), name};
    if (it != json.end() && it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) {
        const auto& entry = (*it)[i];
        if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
            !entry["name"].is_string() || !entry["template"].is_string()) {
          throw_error(ErrorKind::format, config.string(), "chat_template[" + std::to_string(i) + "]",
                      "{\"name\": string, \"template\": string}", entry.dump());
        }
        if (entry["name"] == "default") return {entry["template"].get<std::string>(), name + "[default]"};
      }
      throw_error(ErrorKind::format, config.string(), "chat_template", "a template named \"default\"",
                  "none among " + std::to_string(it->size()));
    }
    if (it != json.end() && !it->is_null()) {
      throw_error(ErrorKind::format, config.string(), "chat_template", "string or list", it->type_name());
    }
  }
  throw_error(ErrorKind::io, model_dir.string(),
              "no chat template: expected chat_template.json, chat_template.jinja or a \"chat_template\" in "
              "tokenizer_config.json");
}

}  // namespace q3vl::text
