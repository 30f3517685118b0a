// Fault injection for the commands that write an output directory (`q3vl build`,
// `q3vl make-checkpoint`): run one that is killed at a named phase (Q3VL_FAULT_AT /
// Q3VL_FAULT_SIGNAL, see src/core/staging_dir.h) or under `ulimit -f`, and look at
// what it left behind.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "core/sha256.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {

// How one faulted run ended, for the signal x phase x result matrix.
struct FaultOutcome {
  int status = -1;  // wait status
  std::string describe() const {
    if (WIFSIGNALED(status)) return std::string("killed by ") + sigabbrev_np(WTERMSIG(status));
    return "exit " + std::to_string(WEXITSTATUS(status));
  }
};

// Runs `q3vl ARGS` killed at `phase` by `signal` (phase "" = no fault point); with
// file_limit_kb > 0, under `ulimit -f` (SIGXFSZ, as a full disk stops a write); `env`
// ("NAME=value ...") is added to its environment.
inline FaultOutcome run_q3vl_with_fault(const std::string& args, const std::string& phase, int signal,
                                        long file_limit_kb = 0, const std::string& env = "") {
  std::string command;
  if (file_limit_kb > 0) command += "ulimit -f " + std::to_string(file_limit_kb) + "; ";
  if (!env.empty()) command += env + " ";
  if (!phase.empty()) command += "Q3VL_FAULT_AT=" + phase + " Q3VL_FAULT_SIGNAL=" + std::to_string(signal) + " ";
  command += "exec " + quote(q3vl_exe()) + " " + args + " 2>/dev/null";
  return FaultOutcome{run_shell(command).status};
}

// The temporaries next to `out`: staging directories (".<name>.partial-<pid>") and old
// outputs set aside by a fallback commit (".<name>.previous-<pid>").
inline std::vector<std::string> temporaries_of(const std::filesystem::path& out) {
  std::vector<std::string> found;
  const std::string staging = "." + out.filename().string() + ".partial";
  const std::string aside = "." + out.filename().string() + ".previous";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(out.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(staging, 0) == 0 || name.rfind(aside, 0) == 0) found.push_back(name);
  }
  return found;
}

// "relative-path sha256" per file under `dir`, sorted: equal listings, equal trees.
// Empty when `dir` does not exist.
inline std::string tree_listing(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir)) return {};
  std::vector<std::string> lines;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    lines.push_back(std::filesystem::relative(entry.path(), dir).string() + " " +
                    core::sha256_file_hex(entry.path()));
  }
  std::sort(lines.begin(), lines.end());
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return all;
}

}  // namespace q3vl::testing
