#include "kernels/dispatch.h"

#include <cpuid.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

constexpr int kNoOverride = -1;
std::atomic<int> forced{kNoOverride};

Isa best_supported() {
  if (isa_supported(Isa::avx512vnni)) return Isa::avx512vnni;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::scalar;
}

Isa from_environment() {
  const char* text = std::getenv("Q3VL_KERNEL_ISA");
  if (text == nullptr || *text == '\0') return best_supported();
  const auto isa = parse_isa(text);
  if (!isa) throw_error(ErrorKind::config, "environment", "Q3VL_KERNEL_ISA", "scalar, avx2 or avx512vnni", text);
  if (!isa_supported(*isa)) {
    throw_error(ErrorKind::config, "environment", "Q3VL_KERNEL_ISA", "a path this CPU supports",
                std::string(text) + " (not supported here)");
  }
  return *isa;
}

}  // namespace

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512vnni: return "avx512vnni";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view text) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512vnni}) {
    if (text == to_string(isa)) return isa;
  }
  return std::nullopt;
}

namespace {
// CPUID leaf 1, ECX bit 29. Asked directly: clang 16's __builtin_cpu_supports has no "f16c".
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
}
}  // namespace

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::avx512vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

Isa active_isa() {
  const int f = forced.load(std::memory_order_relaxed);
  if (f != kNoOverride) return static_cast<Isa>(f);
  static const Isa chosen = from_environment();
  return chosen;
}

void force_isa(std::optional<Isa> isa) {
  if (isa && !isa_supported(*isa)) {
    throw_error(ErrorKind::unsupported, "", "isa", "a path this CPU supports", to_string(*isa));
  }
  forced.store(isa ? static_cast<int>(*isa) : kNoOverride, std::memory_order_relaxed);
}

const IsaKernels& isa_kernels(Isa isa) {
  switch (isa) {
    case Isa::avx2: return kAvx2Kernels;
    case Isa::avx512vnni: return kAvx512VnniKernels;
    case Isa::scalar: break;
  }
  return kScalarKernels;
}

}  // namespace q3vl::kernels
