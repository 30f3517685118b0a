#include "runtime/tool_call_constraint.h"

#include <algorithm>
#include <limits>

#include "q3vl/error.h"
#include "q3vl/tokenizer.h"
#include "runtime/token_bytes.h"

namespace q3vl::runtime {
namespace {

constexpr const char* kField = "tool_call_names";
constexpr const char* kOpen = "<tool_call>";
constexpr const char* kClose = "</tool_call>";

// The id of a non-special added token `content` (its text stays in the decoded output),
// or -1 when the vocabulary has none.
std::int64_t added_token(const text::Tokenizer& tokenizer, std::string_view content) {
  for (const text::AddedToken& t : tokenizer.added_tokens()) {
    if (t.content == content && !t.special) return t.id;
  }
  return -1;
}

}  // namespace

void check_tool_call_names(const std::vector<std::string>& names) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const bool bad = name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
      return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
    });
    if (bad) {
      throw_error(ErrorKind::usage, "", std::string(kField) + "[" + std::to_string(i) + "]",
                  "a non-empty name without '\"', '\\' or control characters", "\"" + name + "\"");
    }
  }
}

ToolCallFormat tool_call_format(const text::Tokenizer& tokenizer, const std::vector<std::string>& names) {
  if (names.empty()) throw_error(ErrorKind::usage, "", kField, "at least one name", "none");
  check_tool_call_names(names);
  ToolCallFormat format;
  format.open_token = added_token(tokenizer, kOpen);
  format.close_token = added_token(tokenizer, kClose);
  const std::string open = format.open_token < 0 ? kOpen : "";
  for (const std::string& name : names) format.headers.push_back(open + "\n{\"name\": \"" + name + "\", \"arguments\": ");
  // Sorted, the headers matching a written prefix are a contiguous range; no header is
  // a prefix of another (names hold no '"'), so a complete header is the only one left.
  std::sort(format.headers.begin(), format.headers.end());
  format.headers.erase(std::unique(format.headers.begin(), format.headers.end()), format.headers.end());
  format.tail = std::string("}\n") + (format.close_token < 0 ? kClose : "");
  return format;
}

ToolCallMachine::ToolCallMachine(const ToolCallFormat& format) : format_(&format) { enter(Phase::open); }

void ToolCallMachine::enter(Phase phase) {
  if (phase == Phase::open && format_->open_token < 0) phase = Phase::header;
  if (phase == Phase::close && format_->close_token < 0) phase = Phase::done;
  phase_ = phase;
  offset_ = 0;
  lo_ = 0;
  hi_ = static_cast<std::uint32_t>(format_->headers.size());
}

bool ToolCallMachine::feed(std::int64_t id, std::string_view bytes) {
  switch (phase_) {
    case Phase::open:
      if (id != format_->open_token) return false;
      enter(Phase::header);
      return true;
    case Phase::close:
      if (id != format_->close_token) return false;
      enter(Phase::done);
      return true;
    case Phase::done: return false;
    default: break;
  }
  // The tags' own tokens belong to their phases only (inside the arguments they would
  // end the call for any parser of this format).
  if (bytes.empty() || id == format_->open_token || id == format_->close_token) return false;
  for (const char c : bytes) {
    if (phase_ == Phase::close || phase_ == Phase::done) return false;  // a token past the tail
    if (!feed_byte(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool ToolCallMachine::feed_byte(unsigned char byte) {
  switch (phase_) {
    case Phase::header: {
      const auto& headers = format_->headers;
      const auto matches = [&](std::uint32_t i) {
        return headers[i].size() > offset_ && static_cast<unsigned char>(headers[i][offset_]) == byte;
      };
      std::uint32_t lo = lo_;
      while (lo < hi_ && !matches(lo)) ++lo;
      if (lo == hi_) return false;
      std::uint32_t hi = lo + 1;
      while (hi < hi_ && matches(hi)) ++hi;
      lo_ = lo;
      hi_ = hi;
      if (++offset_ == headers[lo_].size()) enter(Phase::arguments);
      return true;
    }
    case Phase::arguments:
      if (!json_.feed(byte)) return false;
      if (json_.complete()) enter(Phase::tail);
      return true;
    case Phase::tail:
      if (static_cast<unsigned char>(format_->tail[offset_]) != byte) return false;
      if (++offset_ == format_->tail.size()) enter(Phase::close);
      return true;
    default: return false;
  }
}

int ToolCallMachine::closing_cost() const {
  const int close = format_->close_token < 0 ? 0 : 1;
  const int tail = static_cast<int>(format_->tail.size()) + close;
  int header = std::numeric_limits<int>::max();
  for (std::uint32_t i = lo_; i < hi_; ++i) {
    header = std::min(header, static_cast<int>(format_->headers[i].size() - offset_));
  }
  const int empty_arguments = 2;  // "{}"
  switch (phase_) {
    case Phase::open: return 1 + header + empty_arguments + tail;
    case Phase::header: return header + empty_arguments + tail;
    case Phase::arguments: return json_.closing_cost() + tail;
    case Phase::tail: return static_cast<int>(format_->tail.size() - offset_) + close;
    case Phase::close: return 1;
    case Phase::done: return 0;
  }
  return 0;
}

ToolCallConstraint::ToolCallConstraint(const TokenBytes& tokens, ToolCallFormat format,
                                       std::vector<std::int64_t> stop_token_ids)
    : tokens_(tokens), format_(std::move(format)), stops_(std::move(stop_token_ids)), machine_(format_) {}

void ToolCallConstraint::mask(std::vector<std::uint8_t>& allowed, std::int64_t tokens_left) const {
  const std::int64_t n = tokens_.size();
  allowed.assign(static_cast<std::size_t>(n), 0);
  if (machine_.complete()) {
    for (const std::int64_t id : stops_) {
      if (id >= 0 && id < n) allowed[static_cast<std::size_t>(id)] = 1;
    }
    return;
  }
  // As JsonConstraint::mask: the tokens after this one must cover the closing cost.
  const std::int64_t after = tokens_left - 1 - (stops_.empty() ? 0 : 1);
  const int cost = machine_.closing_cost();
  const bool budgeted = after >= cost - 1;
  const bool in_string = machine_.in_plain_string();
  const bool plain_ok = in_string && (!budgeted || cost <= after);
  bool any = false;
  for (std::int64_t id = 0; id < n; ++id) {
    bool ok = false;
    if (in_string && tokens_.plain_text(id) && id != format_.open_token && id != format_.close_token) {
      ok = plain_ok;  // plain text inside a string changes nothing, closing cost included
    } else {
      ToolCallMachine trial = machine_;
      ok = trial.feed(id, tokens_.bytes(id)) && (!budgeted || trial.closing_cost() <= after);
    }
    allowed[static_cast<std::size_t>(id)] = ok ? 1 : 0;
    any |= ok;
  }
  for (const std::int64_t id : stops_) {
    if (id >= 0 && id < n) allowed[static_cast<std::size_t>(id)] = 0;
  }
  if (!any) {
    throw_error(ErrorKind::runtime, "", kField, "a token that continues the tool call", "none in the vocabulary");
  }
}

void ToolCallConstraint::accept(std::int64_t id) {
  const bool stop = std::find(stops_.begin(), stops_.end(), id) != stops_.end();
  ToolCallMachine next = machine_;
  const bool ok = stop ? machine_.complete() : next.feed(id, tokens_.bytes(id));
  if (!ok) {
    throw_error(ErrorKind::runtime, "", kField, "a token the tool-call constraint allows",
                "token " + std::to_string(id) + " (masked)");
  }
  if (!stop) machine_ = next;
}

}  // namespace q3vl::runtime
