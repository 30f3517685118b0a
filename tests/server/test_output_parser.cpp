// OutputParser against hand-worked replies: reasoning, content and Qwen3 tool calls, in
// one piece and streamed in every split (one byte at a time, and at every cut point), so
// the streamed deltas always add up to the one-shot parse.
#include <gtest/gtest.h>

#include "server/output_parser.h"

namespace q3vl::server {
namespace {

OutputDelta streamed(std::string_view text, bool reasoning, bool tools, std::size_t step) {
  OutputParser parser(reasoning, tools);
  OutputDelta all;
  auto add = [&](OutputDelta d) {
    all.reasoning += d.reasoning;
    all.content += d.content;
    for (auto& c : d.tool_calls) all.tool_calls.push_back(std::move(c));
  };
  for (std::size_t i = 0; i < text.size(); i += step) add(parser.feed(text.substr(i, step)));
  add(parser.finish());
  return all;
}

void expect_same(const OutputDelta& a, const OutputDelta& b, const std::string& what) {
  EXPECT_EQ(a.reasoning, b.reasoning) << what;
  EXPECT_EQ(a.content, b.content) << what;
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size()) << what;
  for (std::size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name) << what;
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments) << what;
  }
}

// Every split of `text` into byte-sized and two-part feeds gives `expected`.
void check_all_splits(std::string_view text, bool reasoning, bool tools, const OutputDelta& expected) {
  expect_same(parse_output(text, reasoning, tools), expected, "one shot");
  expect_same(streamed(text, reasoning, tools, 1), expected, "byte by byte");
  expect_same(streamed(text, reasoning, tools, 3), expected, "3 bytes at a time");
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    OutputParser parser(reasoning, tools);
    OutputDelta all = parser.feed(text.substr(0, cut));
    for (OutputDelta d : {parser.feed(text.substr(cut)), parser.finish()}) {
      all.reasoning += d.reasoning;
      all.content += d.content;
      for (auto& c : d.tool_calls) all.tool_calls.push_back(c);
    }
    expect_same(all, expected, "cut at " + std::to_string(cut));
  }
}

TEST(OutputParser, PlainContentIsKeptVerbatim) {
  OutputDelta expected;
  expected.content = "  Hello <b>world</b>\n";
  check_all_splits("  Hello <b>world</b>\n", false, false, expected);
}

TEST(OutputParser, ThinkingTemplateReplySplitsReasoningFromAnswer) {
  // The Thinking template's prompt ends with "<think>\n": the reply starts inside it.
  OutputDelta expected;
  expected.reasoning = "The user greets me.\nI greet back.";
  expected.content = "Hi there!";
  check_all_splits("The user greets me.\nI greet back.\n</think>\n\nHi there!", true, false, expected);
}

TEST(OutputParser, ReplyOpeningThinkItselfIsReasoning) {
  OutputDelta expected;
  expected.reasoning = "plan";
  expected.content = "answer";
  check_all_splits("<think>\nplan\n</think>\n\nanswer", false, false, expected);
}

TEST(OutputParser, UnfinishedReasoningStaysReasoning) {
  OutputDelta expected;
  expected.reasoning = "still thinking about </thi";
  check_all_splits("still thinking about </thi", true, false, expected);
}

TEST(OutputParser, ThinkInsideAnAnswerIsContent) {
  OutputDelta expected;
  expected.content = "a <think> tag";
  check_all_splits("a <think> tag", false, false, expected);
}

TEST(OutputParser, QwenToolCallBecomesACall) {
  // What the Qwen3 template renders for an assistant tool call, as the model emits it.
  const std::string reply =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>";
  OutputDelta expected;
  expected.content = "Let me check.";
  expected.tool_calls.push_back({"get_weather", R"({"city":"Paris","days":2})"});
  check_all_splits(reply, false, true, expected);
}

TEST(OutputParser, TwoCallsAfterReasoning) {
  const std::string reply =
      "I need two lookups.\n</think>\n\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"x\\\": 1}\"}\n</tool_call>";
  OutputDelta expected;
  expected.reasoning = "I need two lookups.";
  expected.tool_calls.push_back({"a", "{}"});
  expected.tool_calls.push_back({"b", R"({"x": 1})"});  // a string argument is kept as its text
  check_all_splits(reply, true, true, expected);
}

TEST(OutputParser, UnreadableToolCallStaysContent) {
  const std::string reply = "x <tool_call>{not json}</tool_call> y";
  OutputDelta expected;
  expected.content = "x<tool_call>{not json}</tool_call> y";  // whitespace before a call is layout
  check_all_splits(reply, false, true, expected);
}

TEST(OutputParser, UnclosedToolCallStaysContent) {
  OutputDelta expected;
  expected.content = "<tool_call>\n{\"name\": \"a\"";
  check_all_splits("<tool_call>\n{\"name\": \"a\"", false, true, expected);
}

TEST(OutputParser, ToolTagsAreContentWithoutTools) {
  const std::string reply = "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>";
  OutputDelta expected;
  expected.content = reply;
  check_all_splits(reply, false, false, expected);
}

TEST(OutputParser, HoldsBackOnlyWhatCouldBeATag) {
  OutputParser parser(false, true);
  EXPECT_EQ(parser.feed("Hello <tool").content, "Hello");  // "<tool" might open a call; " " might be trimmed
  EXPECT_EQ(parser.feed("box>").content, " <toolbox>");
  EXPECT_EQ(parser.finish().content, "");
}

}  // namespace
}  // namespace q3vl::server
