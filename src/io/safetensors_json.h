// Strict JSON parsing for safetensors headers and index files.
//
// Why not plain nlohmann::json::parse: on a duplicate key it silently keeps one
// value, so a hostile header could name one tensor twice and have either entry
// win. Rust's serde (what the reference safetensors uses) has a recursion limit
// of 128; we apply the same bound so a deeply nested header cannot exhaust the stack.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace q3vl::io {

// Parses `text` as one JSON value. Throws q3vl::Error(format) naming `file` for
// malformed JSON (with nlohmann's byte position; a NUL byte anywhere counts), a key repeated within one object
// (field = the dotted path of that key), or nesting deeper than 128.
//
// For a safetensors header, `max_tensors` bounds its tensor table: the keys of the root
// object other than "__metadata__". They are counted as the parser meets them, so one
// too many throws q3vl::Error(limit) (field "tensor count", naming the limit) before the
// rest of the header is parsed or any table is built.
nlohmann::json parse_json_strict(std::string_view text, const std::string& file,
                                 std::uint64_t max_tensors = std::numeric_limits<std::uint64_t>::max());

}  // namespace q3vl::io
