#include "runtime/kv_contents.h"

#include <algorithm>

namespace q3vl::runtime {
namespace {

std::array<std::int64_t, 3> position_of(const Prompt& prompt, std::int64_t i) {
  return {prompt.positions.at(0, i), prompt.positions.at(1, i), prompt.positions.at(2, i)};
}

}  // namespace

std::int64_t KvContents::common_prefix(const Prompt& prompt) const {
  if (prompt.ids.empty()) return 0;
  const std::size_t limit = std::min(ids_.size(), prompt.ids.size() - 1);
  std::size_t n = 0;
  while (n < limit && ids_[n] == prompt.ids[n] && signature_[n] == prompt.signature[n] &&
         positions_[n] == position_of(prompt, static_cast<std::int64_t>(n))) {
    ++n;
  }
  return static_cast<std::int64_t>(n);
}

void KvContents::truncate(std::int64_t n) {
  const auto size = static_cast<std::size_t>(std::clamp<std::int64_t>(n, 0, this->size()));
  ids_.resize(size);
  signature_.resize(size);
  positions_.resize(size);
}

void KvContents::append_prompt(const Prompt& prompt, std::int64_t from, std::int64_t to) {
  for (std::int64_t i = from; i < to; ++i) {
    ids_.push_back(prompt.ids[static_cast<std::size_t>(i)]);
    signature_.push_back(prompt.signature[static_cast<std::size_t>(i)]);
    positions_.push_back(position_of(prompt, i));
  }
}

void KvContents::append_generated(std::int64_t id, std::int64_t position) {
  ids_.push_back(id);
  signature_.push_back(static_cast<std::uint64_t>(id));
  positions_.push_back({position, position, position});
}

}  // namespace q3vl::runtime
