// Reading the text goldens (tests/goldens/text/, made by
// tests/reference/make_text_goldens.py) in the text suite.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace q3vl::testing::text {

// Every line of a .jsonl golden, parsed (ordered_json keeps tool key order).
std::vector<nlohmann::ordered_json> read_jsonl(const std::filesystem::path& path);
nlohmann::ordered_json read_json(const std::filesystem::path& path);
std::string read_bytes(const std::filesystem::path& path);

// The golden directory of this suite.
std::filesystem::path text_golden_dir();

// True if `s` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or
// code points above U+10FFFF). Written out here so the stream tests do not
// trust the library under test for it.
bool is_valid_utf8(const std::string& s);

}  // namespace q3vl::testing::text
