// Checkpoints this suite makes for itself (once per process) through the library,
// so tests do not depend on which CTest fixtures ran first.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "checkpoint/make_checkpoint.h"
#include "support/test_paths.h"

namespace q3vl::checkpoint::testing_support {

// `preset` with seed 0, written under the test work directory.
inline const std::filesystem::path& made_checkpoint(const std::string& preset) {
  static std::map<std::string, std::filesystem::path> made;
  auto it = made.find(preset);
  if (it != made.end()) return it->second;
  MakeCheckpointOptions options;
  options.preset = preset;
  options.seed = 0;
  options.out = q3vl::testing::work_dir() / "checkpoint-suite" / (preset + "-seed0");
  options.progress = ProgressMode::quiet;
  std::filesystem::remove_all(options.out);
  make_checkpoint(options);
  return made.emplace(preset, options.out).first->second;
}

}  // namespace q3vl::checkpoint::testing_support
