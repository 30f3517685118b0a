// Where tests find their inputs and put their scratch files. Paths are absolute.
//
// CTest runs every test case as its own process, two at a time (-j2), so a
// scratch path shared between test cases would race. work_dir() is therefore
// private to the process; shared_dir() is the one place several processes
// share, for CTest fixtures (made before any test that needs them) and for
// caches that take a file lock themselves.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace q3vl::testing {

// The source tree (for committed goldens and test data).
inline std::filesystem::path source_dir() { return Q3VL_SOURCE_DIR; }
// Committed HF goldens (made by tests/reference/, see its README).
inline std::filesystem::path golden_dir() { return Q3VL_GOLDEN_DIR; }
// build/testdata: shared by all test processes (fixtures, locked caches).
inline std::filesystem::path shared_dir() { return Q3VL_TEST_WORK_DIR; }

// Scratch space of this test process, created on first use and removed when the
// process exits normally (a crashed test leaves it for inspection).
inline std::filesystem::path work_dir() {
  struct ProcessScratch {
    std::filesystem::path dir;
    ProcessScratch() : dir(shared_dir() / ("proc-" + std::to_string(::getpid()))) {
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
    }
    ~ProcessScratch() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  };
  static const ProcessScratch scratch;
  return scratch.dir;
}

// The checkpoint a CTest fixture made with `q3vl make-checkpoint --preset P --seed 0`.
inline std::filesystem::path checkpoint_dir(const char* preset) {
  return shared_dir() / (std::string("checkpoint-") + preset);
}
// The real Qwen3 tokenizer files fetched by scripts/setup.sh.
inline std::filesystem::path tokenizer_dir() { return Q3VL_TOKENIZER_DIR; }
// The q3vl executable, for end-to-end tests of the command line.
inline std::filesystem::path q3vl_exe() { return Q3VL_EXE; }

}  // namespace q3vl::testing
