// KvCache: the decoder's past/present key and value buffers, one pair per layer, each
// [1, num_key_value_heads, capacity, row width] in the package's KV dtype (float32, or
// float16 / int8 for packages whose manifest says so in "kv_cache_dtype"; kv_row_width),
// allocated once and bound as BOTH
// the past input and the present output of every decoder call, so GroupQueryAttention
// appends the new rows in place (docs/reference/onnxruntime.md). Rows [0, length) are valid.
//
// Capacity is what the caller asks for (prompt + max_new_tokens), never the model's whole
// context. grow() reallocates and copies the valid rows: the only copy of the cache, done
// when a chat turn needs more room than an earlier one reserved.
// Not thread-safe; owned by one Chat.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace q3vl::runtime {

// Element type of the KV buffers: what the decoder graph declares for past/present.
// int8: rows of int8 codes with a float16 scale per 32 values (kernels/kv_attention.h).
enum class KvDtype { float32, float16, int8 };

// The manifest's "kv_cache_dtype" ("float32" | "float16" | "int8"). Throws
// q3vl::Error(config) naming q3vl.json's decoder.kv_cache_dtype for anything else.
KvDtype parse_kv_dtype(const std::string& text);
std::size_t kv_element_bytes(KvDtype dtype);
// The buffers' last dimension, in elements: head_dim, or an int8 row's bytes.
std::int64_t kv_row_width(KvDtype dtype, std::int64_t head_dim);
ONNXTensorElementDataType kv_tensor_type(KvDtype dtype);
// Tensor view of `bytes` as `dtype` with `shape` (4 dims); the memory outlives the view.
Ort::Value kv_view(KvDtype dtype, std::byte* bytes, std::size_t count, const std::int64_t (&shape)[4]);

// The KV buffers one decoder call binds, per layer key and value tensors
// [B, kv_heads, capacity, row width]: views whose memory outlives the call.
struct KvBinding {
  std::span<const Ort::Value> keys, values;
  std::int64_t capacity = 0;  // rows per sequence
};

class KvCache {
 public:
  KvCache(std::int64_t num_layers, std::int64_t num_kv_heads, std::int64_t head_dim,
          KvDtype dtype = KvDtype::float32);

  KvDtype dtype() const { return dtype_; }

  std::int64_t capacity() const { return capacity_; }
  std::int64_t length() const { return length_; }
  // Valid rows; the caller sets it after a decoder call appended rows, or truncates it
  // to reuse a prefix (rows beyond are overwritten by the next call).
  void set_length(std::int64_t length);

  // Ensures capacity >= `tokens`, keeping rows [0, length).
  void reserve(std::int64_t tokens);
  // Frees the buffers (capacity 0, length 0).
  void clear();

  // Tensors over layer `layer`'s buffers, shape [1, kv_heads, capacity, row width]. They
  // view memory owned by this cache: valid until the next reserve()/clear().
  Ort::Value& key(std::int64_t layer) { return keys_[static_cast<std::size_t>(layer)]; }
  Ort::Value& value(std::int64_t layer) { return values_[static_cast<std::size_t>(layer)]; }
  // Every layer's tensors for one decoder call (valid until the next reserve()/clear()).
  KvBinding binding() const { return {keys_, values_, capacity_}; }

 private:
  void make_views();

  std::int64_t num_layers_, num_kv_heads_, row_width_;
  KvDtype dtype_;
  std::int64_t capacity_ = 0;
  std::int64_t length_ = 0;
  std::vector<std::vector<std::byte>> key_data_, value_data_;  // zero bits = 0.0 in every dtype
  std::vector<Ort::Value> keys_, values_;
};

}  // namespace q3vl::runtime
