#include "runtime/kv_cache.h"

#include <algorithm>

#include "kernels/kv_attention.h"
#include "q3vl/error.h"

namespace q3vl::runtime {

KvDtype parse_kv_dtype(const std::string& text) {
  if (text == "float32") return KvDtype::float32;
  if (text == "float16") return KvDtype::float16;
  if (text == "int8") return KvDtype::int8;
  throw_error(ErrorKind::config, "q3vl.json", "decoder.kv_cache_dtype", "float32, float16 or int8", text);
}

std::size_t kv_element_bytes(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::float16: return 2;
    case KvDtype::int8: return 1;
    case KvDtype::float32: break;
  }
  return 4;
}

std::int64_t kv_row_width(KvDtype dtype, std::int64_t head_dim) {
  return dtype == KvDtype::int8 ? kernels::kv_row_bytes(kernels::KvCacheType::int8, head_dim) : head_dim;
}

ONNXTensorElementDataType kv_tensor_type(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::float16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case KvDtype::int8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case KvDtype::float32: break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

Ort::Value kv_view(KvDtype dtype, std::byte* bytes, std::size_t count, const std::int64_t (&shape)[4]) {
  const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  return Ort::Value::CreateTensor(cpu, bytes, count * kv_element_bytes(dtype), shape, 4, kv_tensor_type(dtype));
}

KvCache::KvCache(std::int64_t num_layers, std::int64_t num_kv_heads, std::int64_t head_dim, KvDtype dtype)
    : num_layers_(num_layers), num_kv_heads_(num_kv_heads), row_width_(kv_row_width(dtype, head_dim)), dtype_(dtype) {}

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
  const auto new_size = static_cast<std::size_t>(num_kv_heads_ * tokens * row_width_ * elem);
  auto regrow = [&](std::vector<std::byte>& old) {
    std::vector<std::byte> fresh(new_size, std::byte{0});
    // Head h's rows start at h * capacity * row width; copy the valid prefix of each head.
    for (std::int64_t h = 0; h < num_kv_heads_; ++h) {
      const auto from = old.begin() + static_cast<std::ptrdiff_t>(h * capacity_ * row_width_ * elem);
      std::copy(from, from + static_cast<std::ptrdiff_t>(length_ * row_width_ * elem),
                fresh.begin() + static_cast<std::ptrdiff_t>(h * tokens * row_width_ * elem));
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
  const std::int64_t shape[4] = {1, num_kv_heads_, capacity_, row_width_};
  const auto count = static_cast<std::size_t>(num_kv_heads_ * capacity_ * row_width_);
  keys_.clear();
  values_.clear();
  for (std::size_t l = 0; l < key_data_.size(); ++l) {
    keys_.push_back(kv_view(dtype_, key_data_[l].data(), count, shape));
    values_.push_back(kv_view(dtype_, value_data_[l].data(), count, shape));
  }
}

}  // namespace q3vl::runtime
