// What every fuzz target shares: the one rule a target enforces on the library, and
// scratch files for the loaders that read by path.
//
// The rule: for any input bytes, the library either succeeds or throws q3vl::Error.
// Every other outcome reaches libFuzzer as a finding: another exception type escapes
// (std::terminate -> abort), a sanitizer report, a crash, a timeout, an allocation
// above -malloc_limit_mb or a resident size above -rss_limit_mb (run.sh sets both).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string_view>

#include "q3vl/error.h"

namespace q3vl::fuzz {

// Runs `body`; a q3vl::Error is the documented answer to bad input and ends the run.
template <class Body>
void expect_clean(Body&& body) {
  try {
    body();
  } catch (const q3vl::Error&) {
  }
}

// A property the library promises for accepted input; a violation aborts (a finding).
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
  }
}

// True if `text` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text);

// This process's scratch directory (created on first use, removed at exit). The
// name carries the PID so parallel fuzzing jobs never share files.
const std::filesystem::path& scratch_dir();

// Writes `bytes` to scratch_dir() / name (replacing it) and returns that path.
std::filesystem::path write_scratch_file(std::string_view name, std::span<const std::uint8_t> bytes);

}  // namespace q3vl::fuzz
