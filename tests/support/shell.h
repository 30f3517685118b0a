// Running the q3vl executable from CLI tests: a shell command's exit status and stdout.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

namespace q3vl::testing {

struct ShellOutput {
  int status = -1;  // pclose() status; -1 when the command could not be started
  std::string out;  // stdout only (stderr goes to the test log)
};

inline ShellOutput run_shell(const std::string& command) {
  ShellOutput result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
  result.status = pclose(pipe);
  return result;
}

// Single-quoted for sh (test paths contain no single quote).
inline std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

}  // namespace q3vl::testing
