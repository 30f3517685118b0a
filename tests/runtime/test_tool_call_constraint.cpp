// ToolCallConstraint (GenerateOptions::tool_call_names) on the real Qwen3 vocabulary.
// The reference for "what the model would write" is the tokenizer's own encoding of the
// text the chat template renders for an assistant tool call (tests/goldens templates,
// Qwen3's `'<tool_call>\n{"name": "' + name + '", "arguments": ' + args + '}\n</tool_call>'`).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "q3vl/error.h"
#include "q3vl/tokenizer.h"
#include "runtime/token_bytes.h"
#include "runtime/tool_call_constraint.h"
#include "support/test_paths.h"

namespace q3vl::runtime {
namespace {

const text::Tokenizer& tokenizer() {
  static const auto t = text::Tokenizer::load(testing::tokenizer_dir());
  return t;
}

const TokenBytes& table() {
  static const TokenBytes t(tokenizer(), static_cast<std::int64_t>(tokenizer().vocab_size()));
  return t;
}

std::string rendered_call(const std::string& name, const std::string& arguments) {
  return "<tool_call>\n{\"name\": \"" + name + "\", \"arguments\": " + arguments + "}\n</tool_call>";
}

// Feeds the tokenizer's encoding of `text`; returns the index of the first refused token
// or -1.
int first_refused(ToolCallMachine& m, const std::string& text) {
  const auto ids = tokenizer().encode(text);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!m.feed(ids[i], table().bytes(ids[i]))) return static_cast<int>(i);
  }
  return -1;
}

TEST(ToolCallConstraint, TagsAreQwensAddedTokens) {
  const ToolCallFormat f = tool_call_format(tokenizer(), {"get_weather", "add"});
  EXPECT_EQ(f.open_token, *tokenizer().token_to_id("<tool_call>"));
  EXPECT_EQ(f.close_token, *tokenizer().token_to_id("</tool_call>"));
  EXPECT_EQ(f.open_token, 151657);  // Qwen3 tokenizer.json added_tokens
  EXPECT_EQ(f.close_token, 151658);
  const std::vector<std::string> headers = {"\n{\"name\": \"add\", \"arguments\": ",
                                            "\n{\"name\": \"get_weather\", \"arguments\": "};
  EXPECT_EQ(f.headers, headers);
  EXPECT_EQ(f.tail, "}\n");
}

TEST(ToolCallConstraint, AcceptsTheTemplatesRenderingTokenByToken) {
  const ToolCallFormat f = tool_call_format(tokenizer(), {"get_weather", "get_time", "add"});
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"get_weather", "{\"city\": \"Paris\"}"},
      {"get_time", "{}"},
      {"add", "{\"a\": 1, \"b\": [2.5, -3e2], \"c\": {\"d\": null, \"e\": \"\\u00e9\\\"x\"}}"},
  };
  for (const auto& [name, arguments] : calls) {
    ToolCallMachine m(f);
    const std::string text = rendered_call(name, arguments);
    EXPECT_EQ(first_refused(m, text), -1) << text;
    EXPECT_TRUE(m.complete()) << text;
    EXPECT_EQ(m.closing_cost(), 0);
  }
}

TEST(ToolCallConstraint, RefusesWhatIsNotOneCallToANamedFunction) {
  const ToolCallFormat f = tool_call_format(tokenizer(), {"get_weather", "get_time"});
  struct Case {
    std::string text;
    int refused;  // token index, worked out from the encoding below
  };
  const auto at_token_of = [](const std::string& text, const std::string& marker) {
    // The index of the first token whose bytes reach past where `marker` starts.
    const auto ids = tokenizer().encode(text);
    const std::size_t pos = text.find(marker);
    std::size_t end = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      end += table().bytes(ids[i]).size();
      if (end > pos) return static_cast<int>(i);
    }
    return -1;
  };
  const std::vector<Case> cases = {
      {"Sure! " + rendered_call("get_weather", "{}"), 0},  // text before the call
      // "get_w" is a prefix of get_weather: the token that writes the 'i' is refused.
      {rendered_call("get_wind", "{}"), at_token_of(rendered_call("get_wind", "{}"), "ind\"")},
      {rendered_call("get_weather", "[1]"), at_token_of(rendered_call("get_weather", "[1]"), "[1]")},
      {rendered_call("get_weather", "\"x\""), at_token_of(rendered_call("get_weather", "\"x\""), "\"x\"}")},
      {rendered_call("get_weather", "{\"a\": \"</tool_call>\"}"),
       at_token_of(rendered_call("get_weather", "{\"a\": \"</tool_call>\"}"), "</tool_call>\"")},
      {rendered_call("get_weather", "{}") + "\nmore", static_cast<int>(tokenizer().encode(rendered_call("get_weather", "{}")).size())},
  };
  for (const Case& c : cases) {
    ASSERT_GE(c.refused, 0) << c.text;
    ToolCallMachine m(f);
    EXPECT_EQ(first_refused(m, c.text), c.refused) << c.text;
  }
  // The tag spelled with other tokens is not the tag.
  ToolCallMachine m(f);
  EXPECT_FALSE(m.feed(*tokenizer().token_to_id("<"), "<"));
  // A name is a whole name: the header must close after it.
  ToolCallMachine n(f);
  EXPECT_EQ(first_refused(n, rendered_call("get_weatherx", "{}")),
            at_token_of(rendered_call("get_weatherx", "{}"), "x\","));
}

TEST(ToolCallConstraint, RefusesBadNames) {
  for (const std::string& bad : {std::string(), std::string("a\"b"), std::string("a\\b"), std::string("a\nb")}) {
    EXPECT_THROW(tool_call_format(tokenizer(), {"ok", bad}), Error) << bad;
  }
  EXPECT_THROW(tool_call_format(tokenizer(), {}), Error);
  try {
    check_tool_call_names({"ok", "x\"y"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.info().field, "tool_call_names[1]");
  }
}

// Random walks over the mask (a uniform choice among allowed tokens, as a random-weight
// model would sample): every walk ends as a complete call within its budget, whose
// name is one of the given and whose arguments parse as an object (nlohmann::json).
TEST(ToolCallConstraint, RandomWalksOverTheMaskEndAsAValidCall) {
  const std::vector<std::string> names = {"get_weather", "search"};
  const std::int64_t eos = *tokenizer().token_to_id("<|im_end|>");
  const std::regex shape("<tool_call>\n\\{\"name\": \"(get_weather|search)\", \"arguments\": ([\\s\\S]*)\\}\n</tool_call>");
  // The budget counts a token per byte still to write: the shortest call ("search") needs
  // 39, and the stop token one more.
  for (const std::int64_t budget : {std::int64_t{48}, std::int64_t{64}, std::int64_t{100}}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      ToolCallConstraint c(table(), tool_call_format(tokenizer(), names), {eos});
      std::mt19937_64 random(seed * 1000 + static_cast<std::uint64_t>(budget));
      std::vector<std::uint8_t> allowed;
      std::vector<std::int64_t> ids;
      std::string text;
      bool stopped = false;
      for (std::int64_t left = budget; left > 0 && !stopped; --left) {
        c.mask(allowed, left);
        std::vector<std::int64_t> choices;
        for (std::size_t id = 0; id < allowed.size(); ++id) {
          if (allowed[id]) choices.push_back(static_cast<std::int64_t>(id));
        }
        ASSERT_FALSE(choices.empty());
        const std::int64_t id = choices[random() % choices.size()];
        c.accept(id);
        stopped = id == eos;
        if (!stopped) text += table().bytes(id);
      }
      SCOPED_TRACE("budget " + std::to_string(budget) + " seed " + std::to_string(seed) + ": " + text);
      EXPECT_TRUE(stopped);
      std::smatch match;
      ASSERT_TRUE(std::regex_match(text, match, shape));
      EXPECT_TRUE(nlohmann::json::parse(match[2].str()).is_object());
    }
  }
}

TEST(ToolCallConstraint, RefusesATokenTheMaskRefused) {
  ToolCallConstraint c(table(), tool_call_format(tokenizer(), {"f"}), {});
  EXPECT_THROW(c.accept(*tokenizer().token_to_id("<")), Error);
  c.accept(*tokenizer().token_to_id("<tool_call>"));
  EXPECT_FALSE(c.complete());
}

}  // namespace
}  // namespace q3vl::runtime
