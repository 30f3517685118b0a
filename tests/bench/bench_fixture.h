// Packages of the `tiny` CTest fixture checkpoint for the bench suite, built once per test
// run with `q3vl build` and shared (under a file lock) by the suite's test processes.
#pragma once

#include <filesystem>
#include <string>

namespace q3vl::testing {

// shared_dir()/bench-package-<name>, built from checkpoint_dir("tiny") with the extra
// `q3vl build` arguments `build_args` (e.g. "--precision int8") if absent or older than
// the q3vl executable. Throws q3vl::Error(runtime) if the build fails.
std::filesystem::path bench_package(const std::string& name, const std::string& build_args);

// Runs `q3vl <arguments>` with stderr folded into the returned output.
struct CliResult {
  int status = -1;
  std::string out;
};
CliResult run_q3vl(const std::string& arguments);

}  // namespace q3vl::testing
