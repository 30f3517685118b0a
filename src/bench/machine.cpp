// describe_machine(): what a figure was measured on (include/q3vl/bench.h).
#include <onnxruntime_cxx_api.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "q3vl/bench.h"
#include "q3vl/version.h"

namespace q3vl {
namespace {

// The ISA features the int4/int8 GEMV and GEMM paths choose between, as /proc/cpuinfo
// spells them.
constexpr const char* kIsaFlags[] = {"avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw",
                                     "avx512_vnni", "avx512_bf16", "amx_int8"};

constexpr const char* kCommit =
#include "git_commit.inc"
    ;

}  // namespace

BenchMachine describe_machine() {
  BenchMachine m;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && m.cpu.empty()) m.cpu = value;
    if (key == "flags" && flags.empty()) {
      std::istringstream words(value);
      for (std::string w; words >> w;) flags.insert(w);
    }
  }
  for (const char* flag : kIsaFlags) {
    if (flags.count(flag)) m.isa.emplace_back(flag);
  }
  m.logical_cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  utsname u{};
  if (::uname(&u) == 0) m.kernel = u.release;
  m.q3vl_version = kVersion;
  m.q3vl_commit = kCommit;
  m.ort_version = Ort::GetVersionString();
  return m;
}

}  // namespace q3vl
