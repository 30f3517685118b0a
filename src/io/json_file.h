// JSON files (config.json, generation_config.json, processor configs) with errors
// a user can act on: a syntax error names the file, line and column; a field
// error names the file, the dotted field path, the expected type and the value seen:
//
//   config.json: line 12, column 5: syntax error ...
//   config.json: text_config.hidden_size: expected integer, got "64"
//
// Json is nlohmann::ordered_json so that a file read and written back keeps its
// key order (tokenizer_config.json is rewritten that way) and writers are
// deterministic.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace q3vl::io {

using Json = nlohmann::ordered_json;

// Bounds on a JSON document, checked while parsing (depth) or before reading (size),
// so hostile input costs neither unbounded memory nor stack. Strings and arrays are
// bounded by the document size: nothing in a parsed value is larger than its text.
struct JsonLimits {
  // Deepest nesting of arrays and objects. Every recursive walk of a value (dump,
  // copy, compare, destruction of deep chains) spends stack per level; q3vl's files
  // nest < 10 levels. 128 is serde_json's default (what the Rust side uses).
  int max_depth = 128;
  // Largest file read_json_file accepts, from its size before any byte is read.
  // Config, processor and manifest files are kilobytes.
  std::uint64_t max_bytes = 64ull << 20;
};

// Parses JSON text. `file` is only used in error messages.
// Throws q3vl::Error(format) naming file, line and column on a syntax error, and
// q3vl::Error(limit) naming JsonLimits::max_depth for deeper nesting.
Json parse_json(std::string_view text, const std::string& file, const JsonLimits& limits = {});

// Reads and parses a JSON file. Throws q3vl::Error(io) if it cannot be read,
// q3vl::Error(limit) if it is larger than limits.max_bytes (before reading it),
// and what parse_json throws. Error messages use the path as given.
Json read_json_file(const std::filesystem::path& path, const JsonLimits& limits = {});

// Writes `value` as `indent`-space JSON followed by one newline (what Python's
// json.dump(indent=2) + "\n" gives for ASCII content; non-ASCII is written as UTF-8).
// Throws q3vl::Error(io) if the file cannot be written.
void write_json_file(const std::filesystem::path& path, const Json& value, int indent = 2);

// A short rendering of a value for "got ..." in messages: strings quoted,
// containers abbreviated to 60 characters.
std::string describe_json_value(const Json& value);

// A read-only cursor on one JSON object inside a document, remembering the
// file name and the dotted path from the document root (e.g. "text_config").
// Getters either return a typed value or throw q3vl::Error(config) naming
// file + dotted field + expected type + the value seen. A key whose value is
// null counts as absent (Python writes None as null).
//
// Lifetime: non-owning; the Json document must outlive every JsonObject made
// from it. Thread-safety: const methods only; safe to share read-only.
class JsonObject {
 public:
  // Throws q3vl::Error(config) if `value` is not an object (the field is `path`,
  // or "(root)" for the document itself).
  JsonObject(const Json& value, std::string file, std::string path = {});

  const std::string& file() const { return file_; }
  // Dotted path of this object ("" for the document root).
  const std::string& path() const { return path_; }
  const Json& json() const { return *value_; }

  // Dotted path of `key` inside this object ("text_config.hidden_size").
  std::string field_path(std::string_view key) const;
  // True if `key` is present and not null.
  bool has(std::string_view key) const;

  // Required fields: throw q3vl::Error(config) "expected <type>, got missing" when absent.
  JsonObject object(std::string_view key) const;
  std::int64_t get_int(std::string_view key) const;
  double get_number(std::string_view key) const;  // integer or floating JSON number
  bool get_bool(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::vector<std::int64_t> get_int_array(std::string_view key) const;
  std::vector<double> get_number_array(std::string_view key) const;

  // Optional fields: `fallback` when absent or null; a present value of the
  // wrong type still throws.
  std::optional<JsonObject> optional_object(std::string_view key) const;
  std::int64_t get_int(std::string_view key, std::int64_t fallback) const;
  double get_number(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::string get_string(std::string_view key, std::string fallback) const;
  std::vector<std::int64_t> get_int_array(std::string_view key,
                                          std::vector<std::int64_t> fallback) const;

  // Throws q3vl::Error(config) for `key` of this object with the given expectation
  // and the value it holds (or "missing"). For checks the getters cannot make
  // (ranges, relations between fields).
  [[noreturn]] void fail(std::string_view key, std::string expected) const;
  // Same, with an explicit "got" text.
  [[noreturn]] void fail(std::string_view key, std::string expected, std::string got) const;

 private:
  const Json* find(std::string_view key) const;  // nullptr when absent or null

  const Json* value_;  // non-owning, see class comment
  std::string file_;
  std::string path_;
};

}  // namespace q3vl::io
