#include "runtime/stop_strings.h"

#include <algorithm>

namespace q3vl::runtime {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of `stop`.
std::size_t partial_match_length(std::string_view text, std::string_view stop) {
  const std::size_t longest = std::min(text.size(), stop.size() - 1);
  for (std::size_t n = longest; n > 0; --n) {
    if (text.substr(text.size() - n) == stop.substr(0, n)) return n;
  }
  return 0;
}

// Cutting text at a byte offset must not split a UTF-8 sequence: move the cut
// back to the start of the character it falls in.
std::size_t utf8_boundary_at_or_before(std::string_view text, std::size_t cut) {
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

}  // namespace

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) {
  for (auto& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view piece) {
  Result result;
  if (stopped_) {
    result.stopped = true;
    return result;
  }
  pending_.append(piece);
  if (stops_.empty()) {
    result.releasable.swap(pending_);
    return result;
  }
  // Earliest complete stop string wins.
  std::size_t earliest = std::string::npos;
  for (const auto& stop : stops_) earliest = std::min(earliest, pending_.find(stop));
  if (earliest != std::string::npos) {
    result.releasable = pending_.substr(0, earliest);
    pending_.clear();
    stopped_ = result.stopped = true;
    return result;
  }
  std::size_t hold = 0;
  for (const auto& stop : stops_) hold = std::max(hold, partial_match_length(pending_, stop));
  const std::size_t cut = utf8_boundary_at_or_before(pending_, pending_.size() - hold);
  result.releasable = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return result;
}

std::string StopStringMatcher::flush() {
  std::string rest;
  if (!stopped_) rest.swap(pending_);
  pending_.clear();
  return rest;
}

}  // namespace q3vl::runtime
