#include "core/staging_dir.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "q3vl/error.h"

namespace q3vl::core {
namespace fs = std::filesystem;
namespace {

std::string staging_prefix(const fs::path& final_path) { return "." + final_path.filename().string() + ".partial-"; }
// Where the fallback commit (no RENAME_EXCHANGE) sets the old output aside.
std::string set_aside_prefix(const fs::path& final_path) {
  return "." + final_path.filename().string() + ".previous-";
}

// True unless `pid` is certainly gone (kill(pid, 0) fails with ESRCH). A pid that
// was reused by an unrelated process keeps its temporary until that one exits.
bool process_alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

// The pid of a temporary named prefix + digits, or 0 when `name` is not one.
pid_t temporary_pid(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return 0;
  const std::string digits = name.substr(prefix.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return 0;
  return static_cast<pid_t>(std::stol(digits));
}

// Cleans up after dead runs for `final_path`: an old output a fallback commit had set
// aside goes back to `final_path` if that is empty (the run died between its two
// renames) and is removed otherwise (it died after them); staging directories are
// removed. Temporaries of live processes are left alone.
void remove_dead_temporaries(const fs::path& final_path) {
  const std::string staging = staging_prefix(final_path), aside = set_aside_prefix(final_path);
  std::vector<fs::path> dead_staging, dead_aside;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(final_path.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    const pid_t staging_pid = temporary_pid(name, staging), aside_pid = temporary_pid(name, aside);
    const pid_t pid = staging_pid != 0 ? staging_pid : aside_pid;
    if (pid == 0 || pid == getpid() || process_alive(pid)) continue;
    (staging_pid != 0 ? dead_staging : dead_aside).push_back(entry.path());
  }
  std::error_code ignored;
  for (const auto& old : dead_aside) {
    if (!fs::exists(fs::symlink_status(final_path, ignored))) {
      fs::rename(old, final_path, ignored);
    } else {
      fs::remove_all(old, ignored);
    }
  }
  for (const auto& dir : dead_staging) fs::remove_all(dir, ignored);
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
  const bool exchange_allowed = std::getenv("Q3VL_STAGING_NO_EXCHANGE") == nullptr;
  if (exists && exchange_allowed && exchange(path_, final_)) {
    // The staging name now holds the old output; if we die here, the next run removes it.
    committed_ = true;
    fault_point("swapped");
    fs::remove_all(path_, ec);
    return;
  }
  if (exists) {
    // No RENAME_EXCHANGE (an old kernel or a file system without it): rename()
    // replaces only an empty directory, so set the old output aside under a temporary
    // name, rename the new one into place, then remove the old. Between the two renames
    // the path is empty; if the process dies there, the next StagingDir for this path
    // renames the old output back (remove_dead_temporaries).
    const fs::path aside = final_.parent_path() / (set_aside_prefix(final_) + std::to_string(getpid()));
    fs::rename(final_, aside, ec);
    if (ec) throw_error(ErrorKind::io, final_.string(), "", "the old output renamed aside", ec.message());
    fault_point("set_aside");
    fs::rename(path_, final_, ec);
    if (ec) {
      std::error_code ignored;
      fs::rename(aside, final_, ignored);
      throw_error(ErrorKind::io, final_.string(), "", "the staging directory renamed into place", ec.message());
    }
    committed_ = true;
    fault_point("swapped");
    fs::remove_all(aside, ec);
    return;
  }
  fs::rename(path_, final_, ec);
  if (ec) throw_error(ErrorKind::io, final_.string(), "", "the staging directory renamed into place", ec.message());
  committed_ = true;
  fault_point("swapped");
}

}  // namespace q3vl::core
