#include "runtime/kv_cache.h"

#include <algorithm>

#include "q3vl/error.h"

namespace q3vl::runtime {

KvDtype parse_kv_dtype(const std::string& text) {
  if (text == "float32") return KvDtype::float32;
  if (text == "float16") return KvDtype::float16;
  throw_error(ErrorKind::config, "q3vl.json", "decoder.kv_cache_dtype", "float32 or float16", text);
}

std::size_t kv_element_bytes(KvDtype dtype) { return dtype == KvDtype::float16 ? 2 : 4; }

ONNXTensorElementDataType kv_tensor_type(KvDtype dtype) {
  return dtype == KvDtype::float16 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

Ort::Value kv_view(KvDtype dtype, std::byte* bytes, std::size_t count, const std::int64_t (&shape)[4]) {
  const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  return Ort::Value::CreateTensor(cpu, bytes, count * kv_element_bytes(dtype), shape, 4, kv_tensor_type(dtype));
}

KvCache::KvCache(std::int64_t num_layers, std::int64_t num_kv_heads, std::int64_t head_dim, KvDtype dtype)
    : num_layers_(num_layers), num_kv_heads_(num_kv_heads), head_dim_(head_dim), dtype_(dtype) {}

void KvCache::set_length(std::int64_t length) {
  if (length < 0 || length > capacity_) {
    throw_error(ErrorKind::runtime, "", "kv_cache.length", "0.." + std::to_string(capacity_),
                std::to_string(length));
  }
  length_ = length;
}

void KvCache::reserve(std::int64_t tokens) {
  if (tokens <= capacity_) return;
  const auto elem = static_cast<std::int64_t>(kv_element_bytes(dtype_));
  const auto new_size = static_cast<std::size_t>(num_kv_heads_ * tokens * head_dim_ * elem);
  auto regrow = [&](std::vector<std::byte>& old) {
    std::vector<std::byte> fresh(new_size, std::byte{0});
    // Head h's rows start at h * capacity * head_dim; copy the valid prefix of each head.
    for (std::int64_t h = 0; h < num_kv_heads_; ++h) {
      const auto from = old.begin() + static_cast<std::ptrdiff_t>(h * capacity_ * head_dim_ * elem);
      std::copy(from, from + static_cast<std::ptrdiff_t>(length_ * head_dim_ * elem),
                fresh.begin() + static_cast<std::ptrdiff_t>(h * tokens * head_dim_ * elem));
    }
    old.swap(fresh);
  };
  key_data_.resize(static_cast<std::size_t>(num_layers_));
  value_data_.resize(static_cast<std::size_t>(num_layers_));
  for (std::size_t l = 0; l < key_data_.size(); ++l) {
    if (key_data_[l].empty()) {
      key_data_[l].assign(new_size, std::byte{0});
      value_data_[l].assign(new_size, std::byte{0});
    } else {
      regrow(key_data_[l]);
      regrow(value_data_[l]);
    }
  }
  capacity_ = tokens;
  make_views();
}

void KvCache::clear() {
  keys_.clear();
  values_.clear();
  key_data_.clear();
  value_data_.clear();
  capacity_ = 0;
  length_ = 0;
}

void KvCache::make_views() {
  const std::int64_t shape[4] = {1, num_kv_heads_, capacity_, head_dim_};
  const auto count = static_cast<std::size_t>(num_kv_heads_ * capacity_ * head_dim_);
  keys_.clear();
  values_.clear();
  for (std::size_t l = 0; l < key_data_.size(); ++l) {
    keys_.push_back(kv_view(dtype_, key_data_[l].data(), count, shape));
    values_.push_back(kv_view(dtype_, value_data_[l].data(), count, shape));
  }
}

}  // namespace q3vl::runtime
