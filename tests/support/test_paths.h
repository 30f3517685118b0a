// Where tests find their inputs. All paths are absolute, fixed at configure time.
#pragma once

#include <filesystem>

namespace q3vl::testing {

// The source tree (for committed goldens and test data).
inline std::filesystem::path source_dir() { return Q3VL_SOURCE_DIR; }
// Committed HF goldens (made by tests/reference/, see its README).
inline std::filesystem::path golden_dir() { return Q3VL_GOLDEN_DIR; }
// Scratch space under the build tree; CTest fixtures put shared checkpoints here.
inline std::filesystem::path work_dir() { return Q3VL_TEST_WORK_DIR; }
// The checkpoint a CTest fixture made with `q3vl make-checkpoint --preset P --seed 0`.
inline std::filesystem::path checkpoint_dir(const char* preset) {
  return work_dir() / (std::string("checkpoint-") + preset);
}
// The real Qwen3 tokenizer files fetched by scripts/setup.sh.
inline std::filesystem::path tokenizer_dir() { return Q3VL_TOKENIZER_DIR; }
// The q3vl executable, for end-to-end tests of the command line.
inline std::filesystem::path q3vl_exe() { return Q3VL_EXE; }

}  // namespace q3vl::testing
