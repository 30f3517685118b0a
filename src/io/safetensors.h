// safetensors checkpoints: a validated, memory-mapped reader (one file or a
// sharded set behind model.safetensors.index.json) and a streaming writer.
//
// File format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data section; offsets are relative to the data section.
//
// Every failure throws q3vl::Error whose message names the file and, where there
// is one, the tensor: header length beyond the file or above the limit, malformed
// JSON, unknown dtype, offsets outside the data section, overlapping tensors,
// shape x dtype size != byte length, duplicate names, an index naming a missing
// shard or a tensor absent from its shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace q3vl::io {

// A tensor inside a mapped file. Zero-copy: `data` points into the mapping and
// stays valid as long as the SafetensorsFile / Checkpoint that returned it lives.
struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
  std::filesystem::path file;  // the file it lives in, for error messages

  std::int64_t numel() const;
  // Copies the values into float32 (from BF16, F16, F32 or F64); throws for integer dtypes.
  std::vector<float> to_f32() const;
};

struct SafetensorsLimits {
  // Upper bound on the JSON header (the format's own reference uses 100 MB).
  std::uint64_t max_header_bytes = 100ull << 20;
};

// One .safetensors file, memory-mapped read-only. Move-only.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::filesystem::path& path, SafetensorsLimits limits = {});
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::filesystem::path& path() const;
  // Tensor names in data-offset order.
  const std::vector<std::string>& names() const;
  bool contains(const std::string& name) const;
  // Throws q3vl::Error(shape) naming the file if `name` is absent.
  TensorView tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A whole checkpoint directory: DIR/model.safetensors, or the shards listed by
// DIR/model.safetensors.index.json. Move-only; views live as long as it does.
class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir, SafetensorsLimits limits = {});
  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

  const std::filesystem::path& dir() const;
  // All tensor names, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  TensorView tensor(const std::string& name) const;

 private:
  struct Impl;
  explicit Checkpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a writer is told before any data: a tensor's name, dtype and shape.
struct TensorSpec {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::uint64_t byte_size() const;
};

// Streams tensors into one .safetensors file without holding them in memory:
// the header is written from the specs, then each tensor's bytes in spec order.
// Writes go to "<path>.tmp" and are renamed to `path` by finish(); if the writer is
// destroyed before finish(), the temporary file is removed. Output bytes depend only
// on the specs, the data and the metadata (deterministic).
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<TensorSpec> specs,
                    std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Appends the next tensor's bytes; `name` must be the next spec's name and
  // `data.size()` its byte_size(). May be called in pieces (append_partial) for large tensors.
  void write(const std::string& name, std::span<const std::byte> data);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes a checkpoint directory the way Hugging Face does: one model.safetensors,
// or, when the total exceeds `max_shard_bytes`, model-0000k-of-0000n.safetensors
// shards plus model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}).
// `produce(spec, sink)` is called once per spec, in order, and must call sink with
// exactly spec.byte_size() bytes (in one or several pieces).
using TensorSink = std::function<void(std::span<const std::byte>)>;
void write_checkpoint(const std::filesystem::path& dir, const std::vector<TensorSpec>& specs,
                      std::uint64_t max_shard_bytes,
                      const std::function<void(const TensorSpec&, const TensorSink&)>& produce,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace q3vl::io
