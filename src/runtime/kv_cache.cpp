#include "runtime/kv_cache.h"

#include <algorithm>

#include "q3vl/error.h"

namespace q3vl::runtime {

KvCache::KvCache(std::int64_t num_layers, std::int64_t num_kv_heads, std::int64_t head_dim)
    : num_layers_(num_layers), num_kv_heads_(num_kv_heads), head_dim_(head_dim) {}

void KvCache::set_length(std::int64_t length) {
  if (length < 0 || length > capacity_) {
    throw_error(ErrorKind::runtime, "", "kv_cache.length", "0.." + std::to_string(capacity_),
                std::to_string(length));
  }
  length_ = length;
}

void KvCache::reserve(std::int64_t tokens) {
  if (tokens <= capacity_) return;
  const auto rows = static_cast<std::size_t>(head_dim_);
  const auto new_size = static_cast<std::size_t>(num_kv_heads_ * tokens * head_dim_);
  auto regrow = [&](std::vector<float>& old) {
    std::vector<float> fresh(new_size, 0.0f);
    // Head h's rows start at h * capacity * head_dim; copy the valid prefix of each head.
    for (std::int64_t h = 0; h < num_kv_heads_; ++h) {
      const auto from = old.begin() + static_cast<std::ptrdiff_t>(h * capacity_ * head_dim_);
      std::copy(from, from + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(length_) * rows),
                fresh.begin() + static_cast<std::ptrdiff_t>(h * tokens * head_dim_));
    }
    old.swap(fresh);
  };
  key_data_.resize(static_cast<std::size_t>(num_layers_));
  value_data_.resize(static_cast<std::size_t>(num_layers_));
  for (std::size_t l = 0; l < key_data_.size(); ++l) {
    if (key_data_[l].empty()) {
      key_data_[l].assign(new_size, 0.0f);
      value_data_[l].assign(new_size, 0.0f);
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
  const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  const std::int64_t shape[4] = {1, num_kv_heads_, capacity_, head_dim_};
  keys_.clear();
  values_.clear();
  for (std::size_t l = 0; l < key_data_.size(); ++l) {
    keys_.push_back(Ort::Value::CreateTensor<float>(cpu, key_data_[l].data(), key_data_[l].size(), shape, 4));
    values_.push_back(
        Ort::Value::CreateTensor<float>(cpu, value_data_[l].data(), value_data_[l].size(), shape, 4));
  }
}

}  // namespace q3vl::runtime
