// WeightReader: the one way graph writers read checkpoint tensors.
//
// Each call looks a tensor up by its HF name, checks its shape against what the config
// implies, converts it to float32 (from BF16/F16/F32/F64) and reports the source bytes
// to a Progress. Only the returned vector is held: callers convert/quantize it, hand it
// to Graph (which streams it to disk) and drop it, so at most one tensor is in memory.
//
// Errors (q3vl::Error, message names the checkpoint directory and the tensor):
//   shape        tensor missing, or a shape other than expected
//   unsupported  an integer dtype where a float weight is expected
//
// Lifetime: the reader borrows the Checkpoint and the Progress; both must outlive it.
// Thread-safety: none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"
#include "q3vl/progress.h"

namespace q3vl::builder {

class WeightReader {
 public:
  WeightReader(const io::Checkpoint& checkpoint, Progress& progress)
      : checkpoint_(checkpoint), progress_(progress) {}

  // The tensor `name` as float32, row-major, after checking its shape is `shape`.
  std::vector<float> f32(const std::string& name, const std::vector<std::int64_t>& shape);
  // Slice `index` of dim 0 of the tensor `name` (e.g. one expert of a fused
  // [E, A, B] tensor) as float32 [A, B], after checking the whole shape is `shape`.
  // Only that slice is converted and resident.
  std::vector<float> f32_slice(const std::string& name, const std::vector<std::int64_t>& shape,
                               std::int64_t index);
  // The stored shape of `name`; throws shape (naming it) if there is no such tensor.
  std::vector<std::int64_t> shape_of(const std::string& name) const;
  bool contains(const std::string& name) const { return checkpoint_.contains(name); }
  // A message for the user on the build's progress output (a warning a writer counted).
  void note(std::string_view message) { progress_.note(message); }
  const io::Checkpoint& checkpoint() const { return checkpoint_; }

 private:
  // The tensor, checked to exist with `shape` and a float dtype.
  io::TensorView checked_view(const std::string& name, const std::vector<std::int64_t>& shape) const;

  const io::Checkpoint& checkpoint_;
  Progress& progress_;
};

// Tells the kernel the mapped checkpoint bytes `data` are no longer needed. The mapping
// is a read-only file mapping, so the pages are simply dropped from this process (a later
// read, e.g. of a tied embedding, faults them back from the page cache). Without this,
// every touched page of a checkpoint stays in the builder's resident set as file-backed
// RSS (bench/moe/build-ram.md). Every reader of checkpoint tensors calls it after
// converting a tensor.
void release_checkpoint_pages(std::span<const std::byte> data);

// "[64, 32]"
std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace q3vl::builder
