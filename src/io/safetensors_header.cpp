#include "io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>
#include <tuple>

#include "io/safetensors_json.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

using nlohmann::json;

// A JSON value as text for an error message, cut short so a hostile header
// cannot make the message huge.
std::string show(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

std::string range_text(std::uint64_t begin, std::uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

class HeaderParser {
 public:
  explicit HeaderParser(const std::string& file) : file_(file) {}

  TensorEntry parse_tensor(const std::string& name, const json& value) const {
    if (!value.is_object()) {
      throw_error(ErrorKind::format, file_, name, "an object {dtype, shape, data_offsets}",
                  show(value));
    }
    TensorEntry entry;
    entry.name = name;
    entry.dtype = parse_dtype(require(value, name, "dtype", json::value_t::string)
                                  .get_ref<const std::string&>(),
                              file_, name);
    const json& shape = require(value, name, "shape", json::value_t::array);
    for (const json& dim : shape) {
      if (!dim.is_number_unsigned() ||
          dim.get<std::uint64_t>() > std::uint64_t{std::numeric_limits<std::int64_t>::max()}) {
        throw_error(ErrorKind::format, file_, name + ".shape",
                    "a list of non-negative integers", show(shape));
      }
      entry.shape.push_back(dim.get<std::int64_t>());
    }
    const json& offsets = require(value, name, "data_offsets", json::value_t::array);
    if (offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned() ||
        offsets[0].get<std::uint64_t>() > offsets[1].get<std::uint64_t>()) {
      throw_error(ErrorKind::format, file_, name + ".data_offsets",
                  "[begin, end] with 0 <= begin <= end", show(offsets));
    }
    entry.begin = offsets[0].get<std::uint64_t>();
    entry.end = offsets[1].get<std::uint64_t>();
    check_byte_size(entry, shape);
    return entry;
  }

  std::map<std::string, std::string> parse_metadata(const json& value) const {
    std::map<std::string, std::string> metadata;
    if (value.is_null()) return metadata;  // the reference reads null as "no metadata"
    if (!value.is_object()) {
      throw_error(ErrorKind::format, file_, "__metadata__", "an object of strings", show(value));
    }
    for (const auto& [key, item] : value.items()) {
      if (!item.is_string()) {
        throw_error(ErrorKind::format, file_, "__metadata__." + key, "a string", show(item));
      }
      metadata.emplace(key, item.get<std::string>());
    }
    return metadata;
  }

  // The sorted tensors must tile [0, data_size) exactly (see the header comment).
  void check_layout(const std::vector<TensorEntry>& tensors, std::uint64_t data_size) const {
    for (const TensorEntry& entry : tensors) {
      if (entry.end > data_size) {
        throw_error(ErrorKind::format, file_, entry.name + ".data_offsets",
                    "within the data section " + range_text(0, data_size),
                    range_text(entry.begin, entry.end));
      }
    }
    std::uint64_t covered = 0;
    const TensorEntry* previous = nullptr;
    for (const TensorEntry& entry : tensors) {
      if (entry.begin < covered) {
        throw_error(ErrorKind::format, file_, entry.name,
                    "bytes " + range_text(entry.begin, entry.end) + " overlap tensor '" +
                        previous->name + "' at " + range_text(previous->begin, previous->end));
      }
      if (entry.begin > covered) {
        throw_error(ErrorKind::format, file_, entry.name,
                    "data section bytes " + range_text(covered, entry.begin) +
                        " before this tensor belong to no tensor");
      }
      covered = entry.end;
      previous = &entry;
    }
    if (covered != data_size) {
      throw_error(ErrorKind::format, file_,
                  "data section bytes " + range_text(covered, data_size) +
                      " at the end of the file belong to no tensor");
    }
  }

 private:
  const json& require(const json& entry, const std::string& name, const char* key,
                      json::value_t type) const {
    const auto found = entry.find(key);
    const char* expected = type == json::value_t::string ? "a string" : "a list";
    if (found == entry.end()) {
      throw_error(ErrorKind::format, file_, name + "." + key, expected, "nothing");
    }
    if (found->type() != type) {
      throw_error(ErrorKind::format, file_, name + "." + key, expected, show(*found));
    }
    return *found;
  }

  void check_byte_size(const TensorEntry& entry, const json& shape) const {
    std::uint64_t bytes = dtype_size(entry.dtype);
    for (const std::int64_t dim : entry.shape) {
      if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes)) {
        throw_error(ErrorKind::format, file_, entry.name + ".shape",
                    "a byte size below 2^64", show(shape) + " of " + dtype_name(entry.dtype));
      }
    }
    if (bytes != entry.end - entry.begin) {
      throw_error(ErrorKind::format, file_, entry.name,
                  std::to_string(bytes) + " bytes (shape " + show(shape) + " of " +
                      dtype_name(entry.dtype) + ")",
                  std::to_string(entry.end - entry.begin) + " bytes (data_offsets " +
                      range_text(entry.begin, entry.end) + ")");
    }
  }

  const std::string& file_;
};

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file_bytes,
                                           const std::string& file,
                                           const SafetensorsLimits& limits) {
  if (file_bytes.size() < 8) {
    throw_error(ErrorKind::format, file, "header length", "8 bytes",
                "a file of " + std::to_string(file_bytes.size()) + " bytes");
  }
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) {
    header_bytes = (header_bytes << 8) | static_cast<std::uint8_t>(file_bytes[i]);
  }
  if (header_bytes > limits.max_header_bytes) {
    throw_error(ErrorKind::limit, file, "header length",
                "at most " + std::to_string(limits.max_header_bytes) + " bytes",
                std::to_string(header_bytes));
  }
  const std::uint64_t available = file_bytes.size() - 8;
  if (header_bytes > available) {
    throw_error(ErrorKind::format, file, "header length",
                "at most the " + std::to_string(available) + " bytes after it (file truncated?)",
                std::to_string(header_bytes));
  }
  const std::string_view text(reinterpret_cast<const char*>(file_bytes.data()) + 8,
                              static_cast<std::size_t>(header_bytes));
  const json root = parse_json_strict(text, file, limits.max_tensors);
  if (!root.is_object()) {
    throw_error(ErrorKind::format, file, "header", "a JSON object", root.type_name());
  }

  HeaderParser parser(file);
  SafetensorsHeader header;
  header.data_start = 8 + header_bytes;
  header.tensors.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      header.metadata = parser.parse_metadata(value);
    } else {
      header.tensors.push_back(parser.parse_tensor(key, value));
    }
  }
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) {
              return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
            });
  parser.check_layout(header.tensors, available - header_bytes);
  return header;
}

}  // namespace q3vl::io
