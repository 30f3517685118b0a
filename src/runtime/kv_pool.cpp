#include "runtime/kv_pool.h"

#include <new>
#include <string>

#include "q3vl/error.h"

namespace q3vl::runtime {

KvPool::KvPool(std::int64_t num_layers, std::int64_t num_kv_heads, std::int64_t head_dim, std::int64_t slots,
               std::int64_t rows, KvDtype dtype)
    : num_layers_(num_layers), num_kv_heads_(num_kv_heads), row_width_(kv_row_width(dtype, head_dim)), slots_(slots),
      rows_(rows),
      dtype_(dtype) {
  const auto per_buffer = static_cast<std::size_t>(slots_ * num_kv_heads_ * rows_ * row_width_) * kv_element_bytes(dtype_);
  try {
    for (std::int64_t l = 0; l < num_layers_; ++l) {
      // Zeroed (0.0 in every dtype): rows a batch row reads before they are written (an
      // idle slot's) are finite.
      keys_.push_back(std::make_unique<std::byte[]>(per_buffer));
      values_.push_back(std::make_unique<std::byte[]>(per_buffer));
    }
  } catch (const std::bad_alloc&) {
    throw_error(ErrorKind::limit, "", "ctx_per_slot",
                "KV memory that fits (" + std::to_string(bytes()) + " bytes for " + std::to_string(slots_) +
                    " slots x " + std::to_string(rows_) + " rows)",
                "an allocation failure");
  }
  for (std::int64_t s = 0; s < slots_; ++s) {
    auto v = views(s, 1);
    slot_keys_.emplace_back();
    slot_values_.emplace_back();
    for (std::int64_t l = 0; l < num_layers_; ++l) {
      slot_keys_.back().push_back(std::move(v[static_cast<std::size_t>(2 * l)]));
      slot_values_.back().push_back(std::move(v[static_cast<std::size_t>(2 * l + 1)]));
    }
  }
}

std::int64_t KvPool::bytes() const {
  return 2 * num_layers_ * slots_ * num_kv_heads_ * rows_ * row_width_ *
         static_cast<std::int64_t>(kv_element_bytes(dtype_));
}

std::vector<Ort::Value> KvPool::views(std::int64_t first, std::int64_t count) {
  const std::int64_t block = num_kv_heads_ * rows_ * row_width_;
  const std::int64_t shape[4] = {count, num_kv_heads_, rows_, row_width_};
  const auto size = static_cast<std::size_t>(count * block);
  const auto offset = static_cast<std::size_t>(first * block) * kv_element_bytes(dtype_);
  std::vector<Ort::Value> out;  // key, value per layer
  for (std::int64_t l = 0; l < num_layers_; ++l) {
    const auto i = static_cast<std::size_t>(l);
    out.push_back(kv_view(dtype_, keys_[i].get() + offset, size, shape));
    out.push_back(kv_view(dtype_, values_[i].get() + offset, size, shape));
  }
  return out;
}

KvBinding KvPool::slot(std::int64_t slot) const {
  const auto s = static_cast<std::size_t>(slot);
  return {slot_keys_[s], slot_values_[s], rows_};
}

KvBinding KvPool::range(std::int64_t first, std::int64_t count) {
  if (first != range_first_ || count != range_count_) {
    auto v = views(first, count);
    range_keys_.clear();
    range_values_.clear();
    for (std::size_t i = 0; i < v.size(); i += 2) {
      range_keys_.push_back(std::move(v[i]));
      range_values_.push_back(std::move(v[i + 1]));
    }
    range_first_ = first;
    range_count_ = count;
  }
  return {range_keys_, range_values_, rows_};
}

}  // namespace q3vl::runtime
