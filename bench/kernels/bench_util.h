// Small helpers shared by the kernel benchmarks (kernels_bench, kv_bench): the machine
// facts a result file records.
#pragma once

#include <ctime>
#include <fstream>
#include <string>

namespace q3vl::bench_util {

// The text after "key: " of the first line of `path` starting with `key` ("?" if none),
// e.g. read_line("/proc/cpuinfo", "model name").
inline std::string read_line(const char* path, const char* key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "?";
}

// CPU time of the whole process (all threads), seconds.
inline double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The 1-minute load average, as /proc/loadavg writes it.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one;
}

}  // namespace q3vl::bench_util
