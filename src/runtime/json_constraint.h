// JsonMachine: a byte-at-a-time validator for text that must be exactly one JSON object
// (RFC 8259 grammar, as nlohmann::json parses it: strict UTF-8 in strings, \u escapes with
// surrogates paired, no control characters in strings, no leading zeros).
//
// feed(byte) says whether the byte can extend the text so far towards a valid object;
// complete() says the top-level object has closed (then no byte is accepted). The state
// is a small value type: trying a token is copying the machine and feeding its bytes,
// which is how JsonConstraint masks a whole vocabulary each step.
//
// Two limits keep a sampled output from running away: at most kMaxDepth nested
// containers, and at most kMaxWhitespace consecutive whitespace bytes outside strings
// (a model can otherwise loop on newlines forever, as OpenAI warns for its JSON mode).
// The text starts with '{' and ends with the matching '}': no whitespace around the
// object (it would only spend tokens).
//
// closing_cost() is the length of one shortest completion (close the string with '"',
// finish a key with ':0', a number or literal with its remaining bytes, then one closer
// per open container): each of its bytes lowers the cost by exactly one, which is what
// lets JsonConstraint always finish the object within a token budget.
//
// Not thread-safe (a value; copy it per thread).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/token_constraint.h"

namespace q3vl::runtime {

class TokenBytes;

class JsonMachine {
 public:
  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxWhitespace = 32;

  // Consumes `byte` if it keeps the text a prefix of a valid object; otherwise returns
  // false and leaves the state unchanged.
  bool feed(unsigned char byte);
  // feed() of every byte in turn; false (state unspecified) at the first refused one.
  bool feed_all(std::string_view bytes);
  bool complete() const { return state_ == State::done; }
  // Bytes of the shortest completion described above (0 once complete).
  int closing_cost() const;
  // Inside a string with no escape or multi-byte character pending: TokenBytes'
  // plain_text tokens then leave the state exactly as it is.
  bool in_plain_string() const { return state_ == State::string; }

 private:
  enum class State : std::uint8_t {
    start,         // before the object: '{'
    object_open,   // after '{': whitespace, '"' or '}'
    object_key,    // after ',' in an object: whitespace or '"'
    colon,         // after a key: whitespace or ':'
    value,         // where a value must start (after ':' or ',' in an array)
    array_open,    // after '[': a value or ']'
    after_value,   // after a value: whitespace, ',' or the container's closer
    string,        // inside a string
    escape,        // after '\'
    unicode,       // inside \uXXXX
    low_backslash, // after a high-surrogate escape: must be '\'
    low_u,         // ... then 'u'
    utf8,          // inside a multi-byte UTF-8 character (utf8_left bytes to go)
    minus,         // after '-': a digit
    zero,          // after a leading 0 of the integer part
    integer,       // integer digits
    dot,           // after '.': a digit
    fraction,      // fraction digits
    exponent,      // after 'e'/'E': sign or digit
    exponent_sign, // after the exponent's sign: a digit
    exponent_digits,
    literal,       // inside true / false / null
    done,          // the object has closed
  };

  bool step(unsigned char byte);  // feed() without restoring the state on refusal
  bool whitespace();
  bool open(bool object);
  bool close(unsigned char byte);
  bool value_start(unsigned char byte);
  bool end_number(unsigned char byte);  // a number ended at `byte`: process it after the value
  bool string_byte(unsigned char byte);
  bool unicode_digit(unsigned char byte);

  State state_ = State::start;
  std::uint64_t stack_ = 0;  // bit d: the container at depth d is an object (1) or an array (0)
  std::uint8_t depth_ = 0;   // open containers
  std::uint8_t spaces_ = 0;  // consecutive whitespace bytes outside strings
  bool in_key_ = false;      // the current string is an object key
  bool expect_low_ = false;  // the \u escape in progress must be a low surrogate
  bool pending_high_ = false;  // the \u escape in progress is a high surrogate
  std::uint8_t hex_seen_ = 0;  // digits of the \u escape so far
  std::uint16_t code_ = 0;     // their value
  std::uint8_t utf8_left_ = 0;  // continuation bytes still expected
  unsigned char utf8_low_ = 0x80, utf8_high_ = 0xBF;  // range of the next continuation byte
  const char* literal_ = nullptr;  // rest of true / false / null still expected (static text)
};

// Masks a vocabulary so the generated text stays one JSON object (GenerateOptions::json_object).
// Stop tokens are allowed only once the object is complete, and then only they are.
// Tokens with no bytes (special tokens, padding ids) are never allowed otherwise.
// Budget: a token is allowed only if the object can still be closed (and a stop token
// follow, when there are stop ids) within the tokens left after it, counting one token
// per byte of closing_cost() (every byte is a token of a byte-level vocabulary). A model
// that rambles (a random-weight one stays inside strings) is thus steered to close the
// object just in time, and the output is complete JSON even when the budget ends it.
// With a budget too small for even "{}" the budget is ignored.
// Not thread-safe; one per generation. The TokenBytes table outlives it.
class JsonConstraint final : public TokenConstraint {
 public:
  JsonConstraint(const TokenBytes& tokens, std::vector<std::int64_t> stop_token_ids);

  void mask(std::vector<std::uint8_t>& allowed, std::int64_t tokens_left) const override;
  void accept(std::int64_t id) override;
  bool complete() const override { return machine_.complete(); }

 private:
  const TokenBytes& tokens_;  // owned by the Model's parts, which outlive every generation
  std::vector<std::int64_t> stops_;
  JsonMachine machine_;
};

}  // namespace q3vl::runtime
