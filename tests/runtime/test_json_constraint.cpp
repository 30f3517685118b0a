// JsonMachine (the json_object constraint's validator) on hand-worked strings: every
// accepted complete text must parse with nlohmann::json as one object, and each refused
// byte is the first one that makes the text invalid (checked by hand below).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "runtime/json_constraint.h"

namespace q3vl::runtime {
namespace {

// Feeds `text` byte by byte; returns the offset of the first refused byte, or npos.
std::size_t first_refused(const std::string& text, JsonMachine& m) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!m.feed(static_cast<unsigned char>(text[i]))) return i;
  }
  return std::string::npos;
}

TEST(JsonMachine, CompleteObjectsAreAcceptedAndParse) {
  const std::vector<std::string> objects = {
      "{}",
      "{\"a\":1}",
      "{ \"a\" : [1, 2.5, -0.0e+3, 1E9, true, false, null, \"x\"] }",
      "{\"nested\":{\"deeper\":[[],{},[{}]]},\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"}",
      "{\"pair\":\"\\ud83d\\ude00\",\"utf8\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      "{\"zero\":0,\"neg\":-12,\"frac\":3.25,\"exp\":5e-7}",
  };
  for (const std::string& text : objects) {
    JsonMachine m;
    EXPECT_EQ(first_refused(text, m), std::string::npos) << text;
    EXPECT_TRUE(m.complete()) << text;
    const auto parsed = nlohmann::json::parse(text);  // the independent reference
    EXPECT_TRUE(parsed.is_object()) << text;
  }
}

TEST(JsonMachine, RefusesTheFirstInvalidByte) {
  struct Case {
    std::string text;
    std::size_t refused;  // worked out by hand
  };
  const std::vector<Case> cases = {
      {"[1]", 0},                  // the top level must be an object
      {"x", 0},
      {"{a:1}", 1},                // keys are strings
      {"{\"a\" 1}", 5},            // a colon must follow the key
      {"{\"a\":01}", 6},           // no leading zeros
      {"{\"a\":-}", 6},            // '-' needs a digit
      {"{\"a\":1.}", 7},           // '.' needs a digit
      {"{\"a\":1e}", 7},           // the exponent needs a digit
      {"{\"a\":tru}", 8},          // "tru" then '}'
      {"{\"a\":nul1}", 8},
      {"{\"a\":1,}", 7},           // no trailing comma in objects
      {"{\"a\":[1,]}", 8},         // nor in arrays
      {"{\"a\":[1}", 7},           // '}' does not close an array
      {"{\"a\":\"\x01\"}", 6},     // control characters must be escaped
      {"{\"a\":\"\\x\"}", 7},      // unknown escape
      {"{\"a\":\"\\u12g4\"}", 10},  // not a hex digit
      {"{\"a\":\"\\udc00\"}", 9},   // a lone low surrogate (refused at its second digit)
      {"{\"a\":\"\\ud800x\"}", 12},  // a high surrogate not followed by \u
      {"{\"a\":\"\\ud800\\u0041\"}", 14},  // ... nor by a low one (which starts with d)
      {"{\"a\":\"\xc0\xaf\"}", 6},  // overlong UTF-8 lead byte
      {"{\"a\":\"\xe0\x80\x80\"}", 7},  // overlong 3-byte form
      {"{\"a\":\"\xed\xa0\x80\"}", 7},  // UTF-8-encoded surrogate
      {"{\"a\":\"\xf4\x90\x80\x80\"}", 7},  // above U+10FFFF
      {"{\"a\":\"\xc3(\"}", 7},     // missing continuation byte
      {"{} ", 2},                  // nothing after the object
      {" {}", 0},                  // nor before it
      {"{}{}", 2},
  };
  for (const Case& c : cases) {
    JsonMachine m;
    EXPECT_EQ(first_refused(c.text, m), c.refused) << c.text;
    // nlohmann agrees the text is not one JSON object (except trailing whitespace, which
    // JSON allows and the constraint refuses by design: the text ends with the object).
    if (c.text != "{} " && c.text != " {}") {
      EXPECT_FALSE(nlohmann::json::accept(c.text) && nlohmann::json::parse(c.text).is_object()) << c.text;
    }
  }
}

TEST(JsonMachine, RefusalLeavesTheStateUnchanged) {
  JsonMachine m;
  for (const char c : std::string("{\"k\":12")) ASSERT_TRUE(m.feed(static_cast<unsigned char>(c)));
  EXPECT_FALSE(m.feed('x'));
  EXPECT_FALSE(m.feed(']'));
  EXPECT_TRUE(m.feed('3'));  // still inside the number
  EXPECT_TRUE(m.feed('}'));
  EXPECT_TRUE(m.complete());
}

TEST(JsonMachine, BoundsDepthAndWhitespace) {
  JsonMachine deep;
  ASSERT_TRUE(deep.feed('{'));
  for (const char c : std::string("\"a\":")) ASSERT_TRUE(deep.feed(static_cast<unsigned char>(c)));
  for (int d = 1; d < JsonMachine::kMaxDepth; ++d) ASSERT_TRUE(deep.feed('[')) << d;
  EXPECT_FALSE(deep.feed('['));  // depth kMaxDepth + 1
  JsonMachine spaces;
  ASSERT_TRUE(spaces.feed('{'));
  for (int i = 0; i < JsonMachine::kMaxWhitespace; ++i) ASSERT_TRUE(spaces.feed(i % 2 ? ' ' : '\n'));
  EXPECT_FALSE(spaces.feed(' '));
  EXPECT_TRUE(spaces.feed('}'));
  EXPECT_TRUE(spaces.complete());
}

TEST(JsonMachine, ClosingCostIsAShortestCompletion) {
  struct Case {
    std::string prefix;
    int cost;  // worked out by hand: the completion in the comment
  };
  const std::vector<Case> cases = {
      {"", 2},                       // {}
      {"{", 1},                      // }
      {"{\"a", 4},                  // ":0}
      {"{\"a\"", 3},               // :0}
      {"{\"a\":", 2},              // 0}
      {"{\"a\":[", 2},             // ]}
      {"{\"a\":[1,", 3},           // 0]}
      {"{\"a\":[tr", 4},           // ue]}
      {"{\"a\":[\"x\\u12", 5},  // 00"]}
      {"{\"a\":\"\\ud83d", 8},  // backslash u dc00 " }
      {"{\"a\":\"\xe2\x82", 3}, // byte 0x80, ", }
      {"{\"a\":-", 2},             // 0}
      {"{\"a\":1.5e", 2},          // 0}
      {"{\"a\":1,", 5},            // "":0}
      {"{\"a\":{}}", 0},
  };
  for (const Case& c : cases) {
    JsonMachine m;
    ASSERT_EQ(first_refused(c.prefix, m), std::string::npos) << c.prefix;
    EXPECT_EQ(m.closing_cost(), c.cost) << c.prefix;
  }
}

// The budget guarantee JsonConstraint relies on: from every state some byte lowers the
// closing cost by exactly one, so a completion of closing_cost() bytes always exists.
TEST(JsonMachine, SomeByteAlwaysLowersTheClosingCostByOne) {
  const std::string text =
      "{\"k\": [0, -1.5e+3, true, null, {\"x\\n\\ud83d\\ude00\": \"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}], \"z\": false}";
  JsonMachine m;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (!m.complete()) {
      const int cost = m.closing_cost();
      bool found = false;
      for (int b = 0; b < 256 && !found; ++b) {
        JsonMachine trial = m;
        found = trial.feed(static_cast<unsigned char>(b)) && trial.closing_cost() == cost - 1;
      }
      EXPECT_TRUE(found) << "after " << text.substr(0, i);
    }
    if (i < text.size()) {
      ASSERT_TRUE(m.feed(static_cast<unsigned char>(text[i]))) << text.substr(0, i + 1);
    }
  }
  EXPECT_TRUE(m.complete());
  EXPECT_TRUE(nlohmann::json::parse(text).is_object());
}

}  // namespace
}  // namespace q3vl::runtime
