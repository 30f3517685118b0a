// KvPool: the Scheduler's KV memory — per layer one key and one value buffer
// [slots, kv_heads, rows, row width] in the package's KV dtype (kv_cache.h), allocated
// (and zeroed) once at start.
// Slot s owns the contiguous block [s] of every buffer, so
//   - a prefill of slot s binds a [1, kv_heads, rows, row width] view of its block, and
//   - a decode step binds a view of consecutive slots [first, first + count) as a batch
// and GroupQueryAttention appends every row in place (decoder_runner.h).
// Not thread-safe; owned by the Scheduler's thread.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/kv_cache.h"

namespace q3vl::runtime {

class KvPool {
 public:
  // Throws q3vl::Error(limit) naming ctx_per_slot if the memory cannot be allocated.
  KvPool(std::int64_t num_layers, std::int64_t num_kv_heads, std::int64_t head_dim, std::int64_t slots,
         std::int64_t rows, KvDtype dtype = KvDtype::float32);

  std::int64_t slots() const { return slots_; }
  std::int64_t rows() const { return rows_; }  // per slot
  std::int64_t bytes() const;

  // Views of slot `slot` ([1, ...]); valid while the pool lives.
  KvBinding slot(std::int64_t slot) const;
  // Views of slots [first, first + count) ([count, ...]); valid until the next call.
  KvBinding range(std::int64_t first, std::int64_t count);

 private:
  std::vector<Ort::Value> views(std::int64_t first, std::int64_t count);

  std::int64_t num_layers_, num_kv_heads_, row_width_, slots_, rows_;
  KvDtype dtype_;
  std::vector<std::unique_ptr<std::byte[]>> keys_, values_;  // per layer
  std::vector<std::vector<Ort::Value>> slot_keys_, slot_values_;  // [slot][layer]
  std::vector<Ort::Value> range_keys_, range_values_;
  std::int64_t range_first_ = -1, range_count_ = 0;
};

}  // namespace q3vl::runtime
