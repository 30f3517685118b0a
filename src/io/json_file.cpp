#include "io/json_file.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "q3vl/error.h"

namespace q3vl::io {
namespace {

// nlohmann reports the 1-based byte offset where parsing failed; people edit
// files by line and column, so convert.
std::string line_and_column(std::string_view text, std::size_t byte) {
  std::size_t line = 1;
  std::size_t column = 1;
  const std::size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
  for (std::size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1,
// column 2: syntax error ..."; keep the part after the position, which we give ourselves.
std::string strip_exception_prefix(const std::string& message) {
  const auto colon = message.find(": ");
  if (colon != std::string::npos) return message.substr(colon + 2);
  const auto tag = message.find("] ");  // "[json.exception.out_of_range.406] number overflow ..."
  return tag == std::string::npos ? message : message.substr(tag + 2);
}

const char* type_name(const Json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

}  // namespace

Json parse_json(std::string_view text, const std::string& file, const JsonLimits& limits) {
  // nlohmann's parser is iterative; the callback sees the depth of each value as it
  // opens, so an over-deep document stops before its deep part is built.
  const auto check_depth = [&](int depth, Json::parse_event_t event, Json&) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= limits.max_depth) {
      throw_error(ErrorKind::limit, file, "nesting depth",
                  "at most " + std::to_string(limits.max_depth) + " levels (JsonLimits::max_depth)",
                  "deeper");
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), check_depth);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorInfo{ErrorKind::format, file, line_and_column(text, e.byte), {}, {},
                          strip_exception_prefix(e.what())});
  } catch (const nlohmann::json::exception& e) {
    // A number outside double's range ("1e400") is out_of_range.406, with no position.
    throw_error(ErrorKind::format, file, strip_exception_prefix(e.what()));
  }
}

Json read_json_file(const std::filesystem::path& path, const JsonLimits& limits) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > limits.max_bytes) {
    throw_error(ErrorKind::limit, path.string(), "file size",
                "at most " + std::to_string(limits.max_bytes) + " bytes (JsonLimits::max_bytes)",
                std::to_string(size) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open file for reading");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_error(ErrorKind::io, path.string(), "read failed");
  return parse_json(text, path.string(), limits);
}

void write_json_file(const std::filesystem::path& path, const Json& value, int indent) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw_error(ErrorKind::io, path.string(), "cannot open file for writing");
  out << value.dump(indent) << '\n';
  out.close();
  if (!out) throw_error(ErrorKind::io, path.string(), "write failed");
}

std::string describe_json_value(const Json& value) {
  std::string text = value.dump();
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax - 3) + "...";
  return text;
}

JsonObject::JsonObject(const Json& value, std::string file, std::string path)
    : value_(&value), file_(std::move(file)), path_(std::move(path)) {
  if (!value.is_object()) {
    throw_error(ErrorKind::config, file_, path_.empty() ? "(root)" : path_, "object",
                describe_json_value(value));
  }
}

std::string JsonObject::field_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const Json* JsonObject::find(std::string_view key) const {
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return nullptr;
  return &*it;
}

bool JsonObject::has(std::string_view key) const { return find(key) != nullptr; }

void JsonObject::fail(std::string_view key, std::string expected) const {
  const Json* value = find(key);
  fail(key, std::move(expected), value ? describe_json_value(*value) : "missing");
}

void JsonObject::fail(std::string_view key, std::string expected, std::string got) const {
  throw_error(ErrorKind::config, file_, field_path(key), std::move(expected), std::move(got));
}

JsonObject JsonObject::object(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_object()) fail(key, "object");
  return JsonObject(*value, file_, field_path(key));
}

std::optional<JsonObject> JsonObject::optional_object(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return object(key);
}

std::int64_t JsonObject::get_int(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_number_integer()) fail(key, "integer");
  if (value->is_number_unsigned() &&
      value->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    fail(key, "integer within int64");
  }
  return value->get<std::int64_t>();
}

std::int64_t JsonObject::get_int(std::string_view key, std::int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}

double JsonObject::get_number(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_number()) fail(key, "number");
  return value->get<double>();
}

double JsonObject::get_number(std::string_view key, double fallback) const {
  return has(key) ? get_number(key) : fallback;
}

bool JsonObject::get_bool(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_boolean()) fail(key, "boolean");
  return value->get<bool>();
}

bool JsonObject::get_bool(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}

std::string JsonObject::get_string(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_string()) fail(key, "string");
  return value->get<std::string>();
}

std::string JsonObject::get_string(std::string_view key, std::string fallback) const {
  return has(key) ? get_string(key) : fallback;
}

std::vector<std::int64_t> JsonObject::get_int_array(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_array()) fail(key, "array of integers");
  std::vector<std::int64_t> result;
  result.reserve(value->size());
  for (std::size_t i = 0; i < value->size(); ++i) {
    const Json& element = (*value)[i];
    if (!element.is_number_integer()) {
      fail(std::string(key) + "[" + std::to_string(i) + "]", "integer",
           std::string(type_name(element)) + " " + describe_json_value(element));
    }
    result.push_back(element.get<std::int64_t>());
  }
  return result;
}

std::vector<std::int64_t> JsonObject::get_int_array(std::string_view key,
                                                    std::vector<std::int64_t> fallback) const {
  return has(key) ? get_int_array(key) : fallback;
}

std::vector<double> JsonObject::get_number_array(std::string_view key) const {
  const Json* value = find(key);
  if (!value || !value->is_array()) fail(key, "array of numbers");
  std::vector<double> result;
  result.reserve(value->size());
  for (std::size_t i = 0; i < value->size(); ++i) {
    const Json& element = (*value)[i];
    if (!element.is_number()) {
      fail(std::string(key) + "[" + std::to_string(i) + "]", "number",
           std::string(type_name(element)) + " " + describe_json_value(element));
    }
    result.push_back(element.get<double>());
  }
  return result;
}

}  // namespace q3vl::io
