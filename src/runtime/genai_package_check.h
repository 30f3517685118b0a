// Checks an ONNX Runtime GenAI package (`q3vl build --target ort-genai`,
// builder/genai_package.h) the way GenAI will use it: genai_config.json's graph files,
// IO names, dtypes and widths against the graphs' real IO, read from an ONNX Runtime
// session per graph. `q3vl inspect` runs it on any directory with a genai_config.json.
//
// Thread-safe (no shared state).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/ort_session.h"

namespace q3vl::runtime {

inline constexpr const char* kGenaiConfigName = "genai_config.json";

// True if `dir` holds a genai_config.json.
bool is_genai_package(const std::filesystem::path& dir);

struct GenaiGraphReport {
  std::string section;  // "vision", "embedding", "decoder"
  std::string file;
  std::vector<TensorInfo> inputs;   // empty if the session could not be created
  std::vector<TensorInfo> outputs;
};

struct GenaiPackageReport {
  std::string model_type;
  std::int64_t hidden_size = 0;  // decoder.hidden_size (H * (1 + DeepStack taps) when packed)
  std::vector<GenaiGraphReport> graphs;
  // One line per mismatch, naming the config field and both values; empty = consistent.
  std::vector<std::string> problems;
};

// Reads DIR/genai_config.json and opens each graph. Config fields that are missing or
// of the wrong type, graph files that do not load, and every disagreement between the
// config and the graphs are reported in `problems` (the check goes on after each).
// Throws q3vl::Error(io/format) only if genai_config.json itself is missing or not JSON.
GenaiPackageReport check_genai_package(const std::filesystem::path& dir);

}  // namespace q3vl::runtime
