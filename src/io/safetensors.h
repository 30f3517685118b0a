// safetensors checkpoints: a validated, memory-mapped reader (one file or a
// sharded set behind model.safetensors.index.json) and a streaming writer.
//
// File format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data section; offsets are relative to the data section. The exact
// validation rules (those of HF's reference reader) are in io/safetensors_header.h.
//
// Every failure throws q3vl::Error whose message names the file and, where there
// is one, the tensor. Kinds: io (cannot open / read / write a file, a shard the
// index names is missing), limit (header length or tensor count above SafetensorsLimits),
// unsupported (a safetensors dtype q3vl does not read, e.g. F8_E4M3), format
// (everything else wrong with the bytes: truncation, malformed JSON, duplicate
// names, offsets outside the data section, overlaps, gaps, shape x dtype size !=
// byte length, an index naming a tensor absent from its shard), shape (asking for
// a tensor that is not there, or to_f32() of an integer tensor), usage (writer misuse).
//
// Thread-safety: SafetensorsFile and Checkpoint are immutable after open(); const
// calls and the views they return may be used from any number of threads.
// SafetensorsWriter is single-threaded.
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
// `data` has no alignment guarantee (safetensors does not align tensors): copy
// or memcpy out of it rather than casting it to a typed pointer.
struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;  // numel() * dtype_size(dtype) bytes, little-endian
  std::filesystem::path file;       // the file it lives in, for error messages

  // Product of shape (1 for a scalar, shape []).
  std::int64_t numel() const;
  // Copies the values into float32 (from BF16, F16, F32 or F64; F64 rounds to
  // nearest). Throws q3vl::Error(shape) naming the file and tensor for other dtypes.
  std::vector<float> to_f32() const;
};

struct SafetensorsLimits {
  // Upper bound on the JSON header; HF's reference reader refuses headers above
  // 100,000,000 bytes (MAX_HEADER_SIZE in safetensors' tensor.rs).
  std::uint64_t max_header_bytes = 100'000'000;
  // Upper bound on the tensors one file's header (or a checkpoint index's weight_map)
  // lists, counted while the header is parsed, before any table is built. A 100 MB
  // header could otherwise list ~2 million minimal entries, each a JSON tree node and a
  // table row in memory. Real
  // checkpoints need far fewer: Qwen3-VL-235B-A22B has 1,388 tensors with its experts
  // fused; stored per expert (94 layers x 128 experts x gate/up/down) it would have
  // 37,296, ~74,000 with an FP8 scale per matrix. 2^18 leaves 3.5x beyond that.
  std::uint64_t max_tensors = 262'144;
};

// One .safetensors file, memory-mapped read-only and fully validated by open().
// Move-only; a moved-from object may only be destroyed or assigned to.
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
  // Throws q3vl::Error(shape) naming the file and `name` if it is absent.
  TensorView tensor(const std::string& name) const;
  // The header's "__metadata__" (empty if it has none).
  const std::map<std::string, std::string>& metadata() const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A whole checkpoint directory: DIR/model.safetensors if it exists, else the
// shards listed by DIR/model.safetensors.index.json (its "weight_map": tensor name
// -> shard file name in DIR; every shard is opened and validated by open(), and
// every listed tensor must be in the shard that the index names). The index is
// the authority: tensors a shard holds but the index does not list are not visible.
// Move-only; views live as long as the Checkpoint does.
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
  // Throws q3vl::Error(shape) naming the directory and `name` if it is absent.
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
  // numel * dtype size. Throws q3vl::Error(usage) naming the tensor for a negative
  // dimension or a size that overflows 64 bits.
  std::uint64_t byte_size() const;
};

// Streams tensors into one .safetensors file without holding them in memory:
// the header is written from the specs, then each tensor's bytes in spec order.
// The header is compact JSON ("__metadata__" first if non-empty, then the tensors
// in spec order, keys dtype/shape/data_offsets) padded with spaces to a multiple
// of 8 bytes, as HF's writer does. Writes go to "<path>.tmp" and are renamed to
// `path` by finish(); if the writer is destroyed before finish() (or after a
// failure), the temporary file is removed. Output bytes depend only on the specs,
// the data and the metadata (deterministic).
//
// Throws q3vl::Error: usage for bad specs (empty, duplicate or "__metadata__"
// names, negative dims) or out-of-order / oversized / missing data, io naming
// `path` for any failed write, close or rename (e.g. ENOSPC). After a throw the
// writer is dead: later calls throw usage, and the temporary file is removed.
class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<TensorSpec> specs,
                    std::map<std::string, std::string> metadata = {});
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Appends bytes of tensor `name`, which must be the next spec still expecting
  // bytes (zero-byte tensors need no call). A tensor may arrive in several calls,
  // each continuing where the previous stopped; in total exactly its byte_size().
  void write(const std::string& name, std::span<const std::byte> data);
  // Requires every tensor complete; flushes, closes and renames to `path`.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes a checkpoint directory the way Hugging Face does (transformers
// save_pretrained + huggingface_hub's split_state_dict_into_shards): tensors are
// packed greedily in spec order into shards of at most `max_shard_bytes` (a tensor
// larger than that gets a shard of its own). One shard is written as
// model.safetensors; several as model-0000k-of-0000n.safetensors plus
// model.safetensors.index.json = json.dumps({"metadata": {"total_parameters",
// "total_size"}, "weight_map": {name: shard}}, indent=2, sort_keys=True) + "\n".
// Every shard carries `metadata`. `dir` is created if needed; files of the same
// names are replaced. On failure, the files this call already wrote are removed.
// `produce(spec, sink)` is called once per spec, in order, and must call sink with
// exactly spec.byte_size() bytes (in one or several pieces); anything else throws
// q3vl::Error(usage) naming the tensor.
using TensorSink = std::function<void(std::span<const std::byte>)>;
void write_checkpoint(const std::filesystem::path& dir, const std::vector<TensorSpec>& specs,
                      std::uint64_t max_shard_bytes,
                      const std::function<void(const TensorSpec&, const TensorSink&)>& produce,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace q3vl::io
