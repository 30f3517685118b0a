// KvContents: what a KV cache holds, token by token — id, signature (prompt.h: equal
// only for the same id AND the same media content) and MRoPE position (T, H, W). It is
// how a cache's prefix is matched against a new prompt (q3vl::Chat across turns, a
// Scheduler slot across requests): rows whose three agree hold exactly the K/V a fresh
// prefill would compute, so they are kept and only the rest is prefilled.
//
// Not thread-safe; owned with its cache.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "runtime/prompt.h"

namespace q3vl::runtime {

class KvContents {
 public:
  std::int64_t size() const { return static_cast<std::int64_t>(ids_.size()); }

  // Longest prefix of `prompt` equal to the held rows, leaving at least the prompt's last
  // token to prefill (its logits choose the first new token).
  std::int64_t common_prefix(const Prompt& prompt) const;

  void truncate(std::int64_t n);  // keeps rows [0, n)
  void clear() { truncate(0); }
  // Appends prompt tokens [from, to).
  void append_prompt(const Prompt& prompt, std::int64_t from, std::int64_t to);
  // Appends a generated token fed at `position` (text: all three rows equal).
  void append_generated(std::int64_t id, std::int64_t position);

 private:
  std::vector<std::int64_t> ids_;
  std::vector<std::uint64_t> signature_;
  std::vector<std::array<std::int64_t, 3>> positions_;
};

}  // namespace q3vl::runtime
