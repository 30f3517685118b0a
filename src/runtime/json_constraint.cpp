#include "runtime/json_constraint.h"

#include <algorithm>
#include <string>

#include "q3vl/error.h"
#include "runtime/token_bytes.h"

namespace q3vl::runtime {
namespace {

bool is_whitespace(unsigned char b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }
bool is_digit(unsigned char b) { return b >= '0' && b <= '9'; }
int hex_value(unsigned char b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

}  // namespace

bool JsonMachine::feed(unsigned char byte) {
  JsonMachine next = *this;
  if (!next.step(byte)) return false;
  *this = next;
  return true;
}

bool JsonMachine::feed_all(std::string_view bytes) {
  for (const char c : bytes) {
    if (!step(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool JsonMachine::whitespace() {
  if (spaces_ >= kMaxWhitespace) return false;
  ++spaces_;
  return true;
}

bool JsonMachine::open(bool object) {
  if (depth_ >= kMaxDepth) return false;
  const std::uint64_t bit = std::uint64_t{1} << depth_;
  stack_ = object ? (stack_ | bit) : (stack_ & ~bit);
  ++depth_;
  state_ = object ? State::object_open : State::array_open;
  return true;
}

bool JsonMachine::close(unsigned char byte) {
  if (depth_ == 0) return false;
  const bool object = (stack_ >> (depth_ - 1)) & 1u;
  if (object != (byte == '}')) return false;
  --depth_;
  state_ = depth_ == 0 ? State::done : State::after_value;
  return true;
}

bool JsonMachine::value_start(unsigned char byte) {
  switch (byte) {
    case '{': return open(true);
    case '[': return open(false);
    case '"': in_key_ = false; state_ = State::string; return true;
    case '-': state_ = State::minus; return true;
    case '0': state_ = State::zero; return true;
    case 't': literal_ = "rue"; state_ = State::literal; return true;
    case 'f': literal_ = "alse"; state_ = State::literal; return true;
    case 'n': literal_ = "ull"; state_ = State::literal; return true;
    default:
      if (byte >= '1' && byte <= '9') {
        state_ = State::integer;
        return true;
      }
      return false;
  }
}

bool JsonMachine::end_number(unsigned char byte) {
  state_ = State::after_value;
  return step(byte);
}

bool JsonMachine::string_byte(unsigned char byte) {
  if (byte == '"') {
    state_ = in_key_ ? State::colon : State::after_value;
    return true;
  }
  if (byte == '\\') {
    state_ = State::escape;
    return true;
  }
  if (byte < 0x20) return false;  // control characters must be escaped
  if (byte < 0x80) return true;
  // The first continuation byte's range excludes overlong forms, surrogates (ED A0..BF)
  // and code points above U+10FFFF (Unicode 15, table 3-7).
  utf8_low_ = 0x80;
  utf8_high_ = 0xBF;
  if (byte >= 0xC2 && byte <= 0xDF) {
    utf8_left_ = 1;
  } else if (byte >= 0xE0 && byte <= 0xEF) {
    utf8_left_ = 2;
    if (byte == 0xE0) utf8_low_ = 0xA0;
    if (byte == 0xED) utf8_high_ = 0x9F;
  } else if (byte >= 0xF0 && byte <= 0xF4) {
    utf8_left_ = 3;
    if (byte == 0xF0) utf8_low_ = 0x90;
    if (byte == 0xF4) utf8_high_ = 0x8F;
  } else {
    return false;
  }
  state_ = State::utf8;
  return true;
}

bool JsonMachine::unicode_digit(unsigned char byte) {
  const int v = hex_value(byte);
  if (v < 0) return false;
  code_ = static_cast<std::uint16_t>(code_ * 16 + v);
  ++hex_seen_;
  if (hex_seen_ == 1 && expect_low_ && v != 0xD) return false;  // refused now, not one digit late
  if (hex_seen_ == 2) {
    // The top byte decides: D8..DB high surrogate, DC..DF low surrogate.
    const bool high = code_ >= 0xD8 && code_ <= 0xDB, low = code_ >= 0xDC && code_ <= 0xDF;
    if (expect_low_ != low) return false;  // a low one must follow a high one, and only then
    pending_high_ = high;
  }
  if (hex_seen_ < 4) return true;
  expect_low_ = pending_high_;
  state_ = pending_high_ ? State::low_backslash : State::string;
  return true;
}

bool JsonMachine::step(unsigned char byte) {
  if (!is_whitespace(byte)) spaces_ = 0;
  switch (state_) {
    case State::start: return byte == '{' && open(true);
    case State::object_open:
      if (byte == '}') return close(byte);
      [[fallthrough]];
    case State::object_key:
      if (is_whitespace(byte)) return whitespace();
      if (byte != '"') return false;
      in_key_ = true;
      state_ = State::string;
      return true;
    case State::colon:
      if (is_whitespace(byte)) return whitespace();
      if (byte != ':') return false;
      state_ = State::value;
      return true;
    case State::array_open:
      if (byte == ']') return close(byte);
      [[fallthrough]];
    case State::value:
      if (is_whitespace(byte)) return whitespace();
      return value_start(byte);
    case State::after_value:
      if (is_whitespace(byte)) return whitespace();
      if (byte == ',') {
        state_ = (stack_ >> (depth_ - 1)) & 1u ? State::object_key : State::value;
        return true;
      }
      return (byte == '}' || byte == ']') && close(byte);
    case State::string: return string_byte(byte);
    case State::utf8:
      if (byte < utf8_low_ || byte > utf8_high_) return false;
      utf8_low_ = 0x80;
      utf8_high_ = 0xBF;
      if (--utf8_left_ == 0) state_ = State::string;
      return true;
    case State::escape:
      if (byte == 'u') {
        state_ = State::unicode;
        code_ = 0;
        hex_seen_ = 0;
        return true;
      }
      if (std::string_view("\"\\/bfnrt").find(static_cast<char>(byte)) == std::string_view::npos) return false;
      state_ = State::string;
      return true;
    case State::unicode: return unicode_digit(byte);
    case State::low_backslash:
      if (byte != '\\') return false;
      state_ = State::low_u;
      return true;
    case State::low_u:
      if (byte != 'u') return false;
      state_ = State::unicode;
      code_ = 0;
      hex_seen_ = 0;
      return true;
    case State::minus:
      if (byte == '0') state_ = State::zero;
      else if (is_digit(byte)) state_ = State::integer;
      else return false;
      return true;
    case State::integer:
      if (is_digit(byte)) return true;
      [[fallthrough]];
    case State::zero:
      if (byte == '.') state_ = State::dot;
      else if (byte == 'e' || byte == 'E') state_ = State::exponent;
      else return end_number(byte);
      return true;
    case State::dot:
      if (!is_digit(byte)) return false;
      state_ = State::fraction;
      return true;
    case State::fraction:
      if (is_digit(byte)) return true;
      if (byte != 'e' && byte != 'E') return end_number(byte);
      state_ = State::exponent;
      return true;
    case State::exponent:
      if (byte == '+' || byte == '-') {
        state_ = State::exponent_sign;
        return true;
      }
      [[fallthrough]];
    case State::exponent_sign:
      if (!is_digit(byte)) return false;
      state_ = State::exponent_digits;
      return true;
    case State::exponent_digits:
      if (is_digit(byte)) return true;
      return end_number(byte);
    case State::literal:
      if (static_cast<unsigned char>(*literal_) != byte) return false;
      if (*++literal_ == '\0') state_ = State::after_value;
      return true;
    case State::done: return false;
  }
  return false;
}

int JsonMachine::closing_cost() const {
  const int closers = depth_;
  const int string_rest = (in_key_ ? 3 : 1) + closers;  // '"' (+ ':0' after a key)
  switch (state_) {
    case State::start: return 2;
    case State::object_open:
    case State::array_open:
    case State::after_value:
    case State::zero:
    case State::integer:
    case State::fraction:
    case State::exponent_digits: return closers;
    case State::object_key: return 4 + closers;  // "":0
    case State::colon: return 2 + closers;       // :0
    case State::value:
    case State::minus:
    case State::dot:
    case State::exponent:
    case State::exponent_sign: return 1 + closers;  // a digit
    case State::string: return string_rest;
    case State::escape: return 1 + string_rest;
    case State::unicode: {
      const bool low_follows = pending_high_ && hex_seen_ >= 2 && !expect_low_;
      return (4 - hex_seen_) + (low_follows ? 6 : 0) + string_rest;
    }
    case State::low_backslash: return 6 + string_rest;  // a low-surrogate escape: 6 bytes
    case State::low_u: return 5 + string_rest;
    case State::utf8: return utf8_left_ + string_rest;
    case State::literal: return static_cast<int>(std::string_view(literal_).size()) + closers;
    case State::done: return 0;
  }
  return 0;
}

JsonConstraint::JsonConstraint(const TokenBytes& tokens, std::vector<std::int64_t> stop_token_ids)
    : tokens_(tokens), stops_(std::move(stop_token_ids)) {}

void JsonConstraint::mask(std::vector<std::uint8_t>& allowed, std::int64_t tokens_left) const {
  const std::int64_t n = tokens_.size();
  allowed.assign(static_cast<std::size_t>(n), 0);
  if (machine_.complete()) {
    for (const std::int64_t id : stops_) {
      if (id >= 0 && id < n) allowed[static_cast<std::size_t>(id)] = 1;
    }
    return;
  }
  // Tokens after this one must cover the closing bytes (and the stop token).
  const std::int64_t after = tokens_left - 1 - (stops_.empty() ? 0 : 1);
  const int cost = machine_.closing_cost();
  const bool budgeted = after >= cost - 1;
  // Plain text inside a string changes nothing, closing cost included.
  const bool plain_ok = machine_.in_plain_string() && (!budgeted || cost <= after);
  bool any = false;
  for (std::int64_t id = 0; id < n; ++id) {
    const std::string_view bytes = tokens_.bytes(id);
    if (bytes.empty()) continue;
    if (machine_.in_plain_string() && tokens_.plain_text(id)) {
      allowed[static_cast<std::size_t>(id)] = plain_ok ? 1 : 0;
      any |= plain_ok;
      continue;
    }
    JsonMachine trial = machine_;
    const bool ok = trial.feed_all(bytes) && (!budgeted || trial.closing_cost() <= after);
    allowed[static_cast<std::size_t>(id)] = ok ? 1 : 0;
    any |= ok;
  }
  for (const std::int64_t id : stops_) {
    if (id >= 0 && id < n) allowed[static_cast<std::size_t>(id)] = 0;
  }
  if (!any) {
    throw_error(ErrorKind::runtime, "", "json_object", "a token that keeps the JSON valid",
                "none in the vocabulary");
  }
}

void JsonConstraint::accept(std::int64_t id) {
  const bool stop = std::find(stops_.begin(), stops_.end(), id) != stops_.end();
  JsonMachine next = machine_;
  const std::string_view bytes = tokens_.bytes(id);
  const bool ok = stop ? machine_.complete() : !machine_.complete() && !bytes.empty() && next.feed_all(bytes);
  if (!ok) {
    throw_error(ErrorKind::runtime, "", "json_object",
                "a token the JSON constraint allows", "token " + std::to_string(id) + " (masked)");
  }
  if (!stop) machine_ = next;
}

}  // namespace q3vl::runtime
