// Parsing and validation of one safetensors file's header (no I/O: works on the
// file's bytes, so SafetensorsFile can hand it a mapping and tests a buffer).
//
// The rules are those of Hugging Face's reference reader (safetensors 0.8,
// tensor.rs: read_metadata + Metadata::validate), made explicit:
//   - 8-byte little-endian header length N, N <= limit, 8 + N <= file size;
//   - the header is UTF-8 JSON, one object; each key other than "__metadata__"
//     is a tensor whose value is {"dtype": str, "shape": [uint...],
//     "data_offsets": [begin, end]} (other keys inside an entry are ignored, as
//     the reference does); "__metadata__" is an object of strings (or null);
//   - sorted by offsets, the tensors tile the data section exactly: the first
//     begins at 0, each begins where the previous ended, the last ends at the
//     end of the file. So gaps, overlaps, trailing bytes and offsets past the
//     end are all errors; zero-byte tensors may share an offset;
//   - end - begin == numel(shape) * dtype size, computed without overflow.
// Beyond the reference: a repeated key is rejected outright (the reference keeps
// the last one and then usually fails on a gap), and errors name the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/safetensors.h"

namespace q3vl::io {

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // offsets relative to the data section
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorEntry> tensors;  // sorted by (begin, end)
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // absolute file offset of the data section (8 + N)
};

// Validates `file_bytes` (a whole .safetensors file). Throws q3vl::Error naming
// `file` (and the tensor, where there is one): kind limit when N > max_header_bytes
// or the header lists more than max_tensors tensors (counted while parsing, before
// the table is built), kind unsupported for a safetensors dtype q3vl does not read,
// kind format otherwise.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file_bytes,
                                           const std::string& file,
                                           const SafetensorsLimits& limits);

}  // namespace q3vl::io
