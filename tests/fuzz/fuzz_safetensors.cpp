// A whole .safetensors file: header length, JSON header, tensor table, offsets
// (io::parse_safetensors_header, what SafetensorsFile::open runs on the mapping).
#include <cstddef>
#include <cstdint>
#include <span>

#include "harness.h"
#include "io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  q3vl::fuzz::expect_clean([&] {
    // Small limits, so the fuzzer reaches both (a 1 MB header could list ~20,000 tensors).
    const q3vl::io::SafetensorsLimits limits{1 << 20, 64};
    const auto header = q3vl::io::parse_safetensors_header(bytes, "fuzz.safetensors", limits);
    q3vl::fuzz::require(header.tensors.size() <= limits.max_tensors, "at most max_tensors tensors");
    // An accepted table tiles the data section inside the file, in offset order.
    std::uint64_t previous_end = 0;
    for (const auto& t : header.tensors) {
      q3vl::fuzz::require(t.begin <= t.end && t.begin >= previous_end, "tensors sorted and disjoint");
      q3vl::fuzz::require(header.data_start + t.end <= size, "tensor inside the file");
      previous_end = t.end;
    }
  });
  return 0;
}
