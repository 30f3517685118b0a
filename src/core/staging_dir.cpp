#include "core/staging_dir.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "q3vl/error.h"

namespace q3vl::core {
namespace fs = std::filesystem;
namespace {

std::string staging_prefix(const fs::path& final_path) { return "." + final_path.filename().string() + ".partial-"; }

// True unless `pid` is certainly gone (kill(pid, 0) fails with ESRCH). A pid that
// was reused by an unrelated process keeps its temporary until that one exits.
bool process_alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

// Removes "<parent>/.<name>.partial-<pid>" for every dead pid.
void remove_dead_temporaries(const fs::path& final_path) {
  const std::string prefix = staging_prefix(final_path);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(final_path.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid == getpid() || process_alive(pid)) continue;
    std::error_code ignored;
    fs::remove_all(entry.path(), ignored);
  }
}

// renameat2(RENAME_EXCHANGE): both paths exist before and after; their contents swap.
bool exchange(const fs::path& a, const fs::path& b) {
  return syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), 1u << 1 /* RENAME_EXCHANGE */) == 0;
}

}  // namespace

void fault_point(std::string_view phase) {
  const char* at = std::getenv("Q3VL_FAULT_AT");
  if (at == nullptr || phase != at) return;
  const char* sig = std::getenv("Q3VL_FAULT_SIGNAL");
  std::fflush(nullptr);
  std::raise(sig != nullptr ? std::atoi(sig) : SIGKILL);
}

StagingDir::StagingDir(const fs::path& final_path) : final_(fs::absolute(final_path).lexically_normal()) {
  if (!final_.has_filename()) final_ = final_.parent_path();
  const fs::path parent = final_.parent_path();
  for (fs::path p = parent; !p.empty() && !fs::exists(p); p = p.parent_path()) {
    created_parents_.push_back(p);
    if (p == p.parent_path()) break;
  }
  std::error_code ec;
  fs::path failed = parent;
  fs::create_directories(parent, ec);
  if (!ec) {
    remove_dead_temporaries(final_);
    path_ = parent / (staging_prefix(final_) + std::to_string(getpid()));
    failed = path_;
    fs::remove_all(path_, ec);
    if (!ec && !fs::create_directory(path_, ec) && !ec) ec = std::make_error_code(std::errc::file_exists);
  }
  if (ec) {
    std::error_code ignored;
    for (const auto& p : created_parents_) fs::remove(p, ignored);
    throw_error(ErrorKind::io, final_.string(), "cannot create directory " + failed.string() + ": " + ec.message());
  }
  fault_point("staging");
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
  // Innermost first; remove() leaves a directory someone else filled meanwhile.
  for (const auto& p : created_parents_) fs::remove(p, ignored);
}

void StagingDir::commit(bool replace) {
  fault_point("commit");
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(final_, ec));
  if (exists && !replace) {
    throw_error(ErrorKind::usage, final_.string(), "", "a path that does not exist (or --force)",
                "an existing file or directory");
  }
  if (exists && exchange(path_, final_)) {
    // The staging name now holds the old output; if we die here, the next run removes it.
    committed_ = true;
    fault_point("swapped");
    fs::remove_all(path_, ec);
    return;
  }
  if (exists) {
    // No RENAME_EXCHANGE (an old kernel or a file system without it): rename()
    // atomically replaces only an empty directory, so remove the old output first.
    // Not crash-atomic; this path exists for portability, not as the normal route.
    fs::remove_all(final_, ec);
    if (ec) throw_error(ErrorKind::io, final_.string(), "", "a replaceable output", ec.message());
  }
  fs::rename(path_, final_, ec);
  if (ec) throw_error(ErrorKind::io, final_.string(), "", "the staging directory renamed into place", ec.message());
  committed_ = true;
  fault_point("swapped");
}

}  // namespace q3vl::core
