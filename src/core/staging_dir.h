// Crash-safe output directories: everything a command writes goes into a hidden
// staging directory next to the output, which replaces the output in one atomic
// step at the end. Used by `q3vl build` and `q3vl make-checkpoint`.
//
// Invariants, whatever kills the process (exception, SIGINT/SIGTERM/SIGKILL, SIGXFSZ
// from `ulimit -f`, power loss short of file-system damage):
//   - the previous output at that path is untouched until the swap, and the swap is
//     one renameat2(RENAME_EXCHANGE), so the path always holds the old or the new
//     output in full;
//   - where the file system has no RENAME_EXCHANGE, the old output is first renamed
//     to "<parent>/.<name>.previous-<pid>", then the new one into place: a crash
//     between the two renames leaves the path empty until the next StagingDir for it,
//     which renames the old output back;
//   - temporaries are named "<parent>/.<name>.partial-<pid>"; each new StagingDir
//     for the same output removes those whose process is gone, so no stale
//     temporary survives the next run. A live process's temporary is left alone.
//
// Fault injection (tests only): with Q3VL_FAULT_AT=<phase> in the environment the
// process raises Q3VL_FAULT_SIGNAL (a number, default SIGKILL) when it reaches that
// phase: "staging" (directory created), "writing" (the command's own mid-write
// point, see fault_point), "commit" (everything written, before the swap), "set_aside"
// (fallback only: old output renamed aside, new one not yet in place), "swapped" (new
// output in place, old one not yet removed). Q3VL_STAGING_NO_EXCHANGE=1 makes commit
// take the fallback. tests/support/crash_safety.h drives them.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

namespace q3vl::core {

// Raises the configured signal if Q3VL_FAULT_AT names `phase` (a no-op otherwise).
void fault_point(std::string_view phase);

// Lifetime: a stack object; its destructor removes the staging directory (and any
// parent directories it created) unless commit() succeeded. Not thread-safe.
class StagingDir {
 public:
  // Creates `final_path`'s parent directories if needed and a fresh staging
  // directory, after removing the temporaries of dead earlier runs for the same
  // output. Throws q3vl::Error(io) naming the directory it cannot create.
  explicit StagingDir(const std::filesystem::path& final_path);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& final_path() const { return final_; }

  // Puts the staging directory at final_path. An existing final_path is replaced
  // only when `replace` (otherwise q3vl::Error(usage)); it is swapped out atomically
  // and then removed. Throws q3vl::Error(io) if the rename fails (the old output is
  // then still in place).
  void commit(bool replace);

 private:
  std::filesystem::path final_;
  std::filesystem::path path_;
  std::vector<std::filesystem::path> created_parents_;  // innermost first
  bool committed_ = false;
};

}  // namespace q3vl::core
