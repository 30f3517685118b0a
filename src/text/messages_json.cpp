// OpenAI-shape chat JSON -> q3vl::text::Message (see include/q3vl/messages.h).
// Every error names the input and the JSON path of the offending value.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <initializer_list>

#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "q3vl/error.h"
#include "q3vl/messages.h"

namespace q3vl::text {
namespace {

using Json = io::Json;

// Human-readable JSON type for "got ..." (a string also shows its value).
std::string describe(const Json& value) {
  if (value.is_string()) return "string " + value.dump();
  if (value.is_number()) return "number " + value.dump();
  if (value.is_boolean()) return std::string("boolean ") + (value.get<bool>() ? "true" : "false");
  return value.type_name();
}

struct Walker {
  const std::string& source;

  [[noreturn]] void fail(const std::string& path, const std::string& expected, const std::string& got) const {
    throw_error(ErrorKind::format, source, path, expected, got);
  }

  const Json& require(const Json& object, const char* key, const std::string& path) const {
    auto it = object.find(key);
    if (it == object.end()) fail(path.empty() ? key : path + "." + key, "a value", "nothing (missing key)");
    return *it;
  }

  std::string string_at(const Json& value, const std::string& path) const {
    if (!value.is_string()) fail(path, "string", describe(value));
    return value.get<std::string>();
  }

  void only_keys(const Json& object, const std::string& path, std::initializer_list<const char*> allowed) const {
    for (const auto& [key, value] : object.items()) {
      const bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* k) { return key == k; });
      if (!known) {
        std::string list;
        for (const char* k : allowed) list += (list.empty() ? "" : ", ") + std::string("\"") + k + "\"";
        fail(path + "." + key, "one of the keys " + list, "unknown key");
      }
    }
  }

  // url as a bare string or {"url": "...", "detail": ...}.
  MediaSource media_url(const Json& value, const std::string& path) const {
    if (value.is_string()) return parse_media_url(value.get<std::string>(), source, path);
    if (!value.is_object()) fail(path, "string or {\"url\": string}", describe(value));
    only_keys(value, path, {"url", "detail"});
    return parse_media_url(string_at(require(value, "url", path), path + ".url"), source, path + ".url");
  }

  ContentPart part(const Json& value, const std::string& path) const {
    if (!value.is_object()) fail(path, "object {\"type\": ...}", describe(value));
    const std::string type = string_at(require(value, "type", path), path + ".type");
    ContentPart part;
    if (type == "text") {
      only_keys(value, path, {"type", "text"});
      part.type = ContentPart::Type::text;
      part.text = string_at(require(value, "text", path), path + ".text");
    } else if (type == "image_url" || type == "video_url") {
      part.type = type == "image_url" ? ContentPart::Type::image : ContentPart::Type::video;
      only_keys(value, path, {"type", type == "image_url" ? "image_url" : "video_url"});
      part.media = media_url(require(value, type.c_str(), path), path + "." + type);
    } else if (type == "image" || type == "video") {
      // Hugging Face's own shape: the media under "image"/"video", "url" or "path".
      part.type = type == "image" ? ContentPart::Type::image : ContentPart::Type::video;
      only_keys(value, path, {"type", type == "image" ? "image" : "video", "url", "path"});
      const char* key = value.contains(type) ? type.c_str() : value.contains("url") ? "url" : "path";
      part.media = parse_media_url(string_at(require(value, key, path), path + "." + key), source,
                                   path + "." + key);
    } else {
      fail(path + ".type", "one of \"text\", \"image_url\", \"video_url\", \"image\", \"video\"", describe(value["type"]));
    }
    return part;
  }

  ToolCall tool_call(const Json& value, const std::string& path) const {
    if (!value.is_object()) fail(path, "object", describe(value));
    ToolCall call;
    const Json* function = &value;
    std::string function_path = path;
    if (value.contains("function")) {
      only_keys(value, path, {"id", "type", "function"});
      if (value.contains("type") && string_at(value["type"], path + ".type") != "function") {
        fail(path + ".type", "\"function\"", describe(value["type"]));
      }
      function = &value["function"];
      function_path = path + ".function";
      if (!function->is_object()) fail(function_path, "object", describe(*function));
      only_keys(*function, function_path, {"name", "arguments"});
    } else {
      only_keys(value, path, {"id", "type", "name", "arguments"});
    }
    if (value.contains("id")) call.id = string_at(value["id"], path + ".id");
    call.name = string_at(require(*function, "name", function_path), function_path + ".name");
    const Json& arguments = require(*function, "arguments", function_path);
    if (arguments.is_string()) {
      call.arguments = arguments.get<std::string>();
      call.arguments_is_string = true;
    } else if (arguments.is_object()) {
      call.arguments = arguments.dump();
      call.arguments_is_string = false;
    } else {
      fail(function_path + ".arguments", "string or object", describe(arguments));
    }
    return call;
  }

  Message message(const Json& value, const std::string& path) const {
    if (!value.is_object()) fail(path, "object {\"role\": ..., \"content\": ...}", describe(value));
    only_keys(value, path,
              {"role", "content", "reasoning_content", "reasoning", "thinking", "tool_calls", "tool_call_id", "name",
               "refusal", "annotations"});
    Message message;
    message.role = string_at(require(value, "role", path), path + ".role");
    if (message.role.empty()) fail(path + ".role", "a non-empty string", "\"\"");
    if (auto it = value.find("content"); it != value.end() && !it->is_null()) {
      if (it->is_string()) {
        message.content = it->get<std::string>();
      } else if (it->is_array()) {
        std::vector<ContentPart> parts;
        for (std::size_t i = 0; i < it->size(); ++i) {
          parts.push_back(part((*it)[i], path + ".content[" + std::to_string(i) + "]"));
        }
        message.content = std::move(parts);
      } else {
        fail(path + ".content", "string, array of parts or null", describe(*it));
      }
    }
    // HF reads reasoning from the first of these that is not None (_alias_reasoning_fields).
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      if (auto it = value.find(key); it != value.end() && !it->is_null()) {
        message.reasoning_content = string_at(*it, path + "." + key);
        break;
      }
    }
    if (auto it = value.find("tool_calls"); it != value.end() && !it->is_null()) {
      if (!it->is_array()) fail(path + ".tool_calls", "array", describe(*it));
      for (std::size_t i = 0; i < it->size(); ++i) {
        message.tool_calls.push_back(tool_call((*it)[i], path + ".tool_calls[" + std::to_string(i) + "]"));
      }
    }
    if (auto it = value.find("tool_call_id"); it != value.end() && !it->is_null()) {
      message.tool_call_id = string_at(*it, path + ".tool_call_id");
    }
    if (auto it = value.find("name"); it != value.end() && !it->is_null()) {
      message.name = string_at(*it, path + ".name");
    }
    return message;
  }

  std::vector<Message> messages(const Json& value, const std::string& path) const {
    if (!value.is_array()) fail(path, "array of messages", describe(value));
    std::vector<Message> out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) out.push_back(message(value[i], path + "[" + std::to_string(i) + "]"));
    return out;
  }
};

// io::parse_json bounds the nesting depth (io::JsonLimits) of what users send.
Json parse(std::string_view json, const std::string& source) { return io::parse_json(json, source); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

MediaSource parse_media_url(std::string_view url, const std::string& source, const std::string& field) {
  if (url.empty()) throw_error(ErrorKind::format, source, field, "a path or URL", "an empty string");
  MediaSource media;
  if (starts_with_ci(url, "data:")) {
    media.kind = MediaSource::Kind::data_url;
    media.location = std::string(url);
  } else if (starts_with_ci(url, "http://") || starts_with_ci(url, "https://")) {
    media.kind = MediaSource::Kind::http_url;
    media.location = std::string(url);
  } else if (starts_with_ci(url, "file://")) {
    // file:///abs/path or file://localhost/abs/path; %XX escapes decoded (RFC 8089).
    std::string_view rest = url.substr(7);
    if (starts_with_ci(rest, "localhost/")) rest.remove_prefix(9);
    if (rest.empty() || rest.front() != '/') {
      throw_error(ErrorKind::format, source, field, "file:///absolute/path", std::string(url));
    }
    std::string path;
    for (std::size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '%' && i + 2 < rest.size() && hex_value(rest[i + 1]) >= 0 && hex_value(rest[i + 2]) >= 0) {
        path.push_back(static_cast<char>(hex_value(rest[i + 1]) * 16 + hex_value(rest[i + 2])));
        i += 2;
      } else {
        path.push_back(rest[i]);
      }
    }
    media.kind = MediaSource::Kind::path;
    media.location = std::move(path);
  } else {
    // A URL scheme is letters/digits/+.- then "://"; anything else is a local path.
    const auto colon = url.find("://");
    if (colon != std::string_view::npos && colon > 0 &&
        std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '.' || c == '-';
        })) {
      throw_error(ErrorKind::format, source, field, "a local path or a file, http(s) or data: URL",
                  "URL scheme \"" + std::string(url.substr(0, colon)) + "\"");
    }
    media.kind = MediaSource::Kind::path;
    media.location = std::string(url);
  }
  return media;
}

std::vector<Message> parse_messages_json(std::string_view json, const std::string& source,
                                         const std::string& path_prefix) {
  return Walker{source}.messages(parse(json, source), path_prefix);
}

ChatRequest parse_chat_request_json(std::string_view json, const std::string& source) {
  const Json root = parse(json, source);
  const Walker walker{source};
  ChatRequest request;
  if (root.is_array()) {
    request.messages = walker.messages(root, "messages");
    return request;
  }
  if (!root.is_object()) walker.fail("", "array of messages or object with \"messages\"", describe(root));
  request.messages = walker.messages(walker.require(root, "messages", ""), "messages");
  if (auto it = root.find("tools"); it != root.end() && !it->is_null()) {
    if (!it->is_array()) walker.fail("tools", "array", describe(*it));
    request.tools_json = it->dump();
  }
  return request;
}

ChatRequest read_chat_request_file(const std::filesystem::path& path) {
  return parse_chat_request_json(read_file(path), path.string());
}

std::string read_tools_file(const std::filesystem::path& path) {
  const Json tools = parse(read_file(path), path.string());
  if (!tools.is_array()) Walker{path.string()}.fail("", "array of tool definitions", describe(tools));
  return tools.dump();
}

}  // namespace q3vl::text
