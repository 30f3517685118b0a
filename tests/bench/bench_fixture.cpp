#include "bench/bench_fixture.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>

#include "q3vl/error.h"
#include "support/shell.h"
#include "support/test_paths.h"

namespace q3vl::testing {

std::filesystem::path bench_package(const std::string& name, const std::string& build_args) {
  const auto dir = shared_dir() / ("bench-package-" + name);
  const std::string lock_path = dir.string() + ".lock";
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0) throw_error(ErrorKind::io, lock_path, "", "a lock file", "cannot create it");
  ::flock(fd, LOCK_EX);  // CTest runs test processes in parallel: one builds, the others wait
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{fd};
  const auto manifest = dir / "q3vl.json";
  if (std::filesystem::exists(manifest) &&
      std::filesystem::last_write_time(manifest) >= std::filesystem::last_write_time(q3vl_exe())) {
    return dir;
  }
  const std::string command = quote(q3vl_exe()) + " build --model " + quote(checkpoint_dir("tiny")) + " --out " +
                              quote(dir) + " " + build_args + " --force --quiet > /dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    throw_error(ErrorKind::runtime, dir.string(), "", "q3vl build to succeed", "failure: " + command);
  }
  return dir;
}

CliResult run_q3vl(const std::string& arguments) {
  const ShellOutput r = run_shell(quote(q3vl_exe()) + " " + arguments + " 2>&1");
  return {r.status, r.out};
}

}  // namespace q3vl::testing
