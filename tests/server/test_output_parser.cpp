// OutputParser against hand-worked replies: reasoning, content and Qwen3 tool calls, in
// one piece and streamed in every split (one byte at a time, and at every cut point), so
// the streamed deltas always add up to the one-shot parse.
#include <gtest/gtest.h>

#include "server/output_parser.h"

namespace q3vl::server {
namespace {

ParsedOutput streamed(std::string_view text, bool reasoning, bool tools, std::size_t step) {
  OutputParser parser(reasoning, tools);
  ParsedOutput all;
  for (std::size_t i = 0; i < text.size(); i += step) accumulate(all, parser.feed(text.substr(i, step)));
  accumulate(all, parser.finish());
  return all;
}

void expect_same(const ParsedOutput& a, const ParsedOutput& b, const std::string& what) {
  EXPECT_EQ(a.reasoning, b.reasoning) << what;
  EXPECT_EQ(a.content, b.content) << what;
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size()) << what;
  for (std::size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name) << what;
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments) << what;
  }
}

// Every split of `text` into byte-sized and two-part feeds gives `expected`.
void check_all_splits(std::string_view text, bool reasoning, bool tools, const ParsedOutput& expected) {
  expect_same(parse_output(text, reasoning, tools), expected, "one shot");
  expect_same(streamed(text, reasoning, tools, 1), expected, "byte by byte");
  expect_same(streamed(text, reasoning, tools, 3), expected, "3 bytes at a time");
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    OutputParser parser(reasoning, tools);
    ParsedOutput all;
    accumulate(all, parser.feed(text.substr(0, cut)));
    accumulate(all, parser.feed(text.substr(cut)));
    accumulate(all, parser.finish());
    expect_same(all, expected, "cut at " + std::to_string(cut));
  }
}

TEST(OutputParser, PlainContentIsKeptVerbatim) {
  ParsedOutput expected;
  expected.content = "  Hello <b>world</b>\n";
  check_all_splits("  Hello <b>world</b>\n", false, false, expected);
}

TEST(OutputParser, ThinkingTemplateReplySplitsReasoningFromAnswer) {
  // The Thinking template's prompt ends with "<think>\n": the reply starts inside it.
  ParsedOutput expected;
  expected.reasoning = "The user greets me.\nI greet back.";
  expected.content = "Hi there!";
  check_all_splits("The user greets me.\nI greet back.\n</think>\n\nHi there!", true, false, expected);
}

TEST(OutputParser, ReplyOpeningThinkItselfIsReasoning) {
  ParsedOutput expected;
  expected.reasoning = "plan";
  expected.content = "answer";
  check_all_splits("<think>\nplan\n</think>\n\nanswer", false, false, expected);
}

TEST(OutputParser, UnfinishedReasoningStaysReasoning) {
  ParsedOutput expected;
  expected.reasoning = "still thinking about </thi";
  check_all_splits("still thinking about </thi", true, false, expected);
}

TEST(OutputParser, ThinkInsideAnAnswerIsContent) {
  ParsedOutput expected;
  expected.content = "a <think> tag";
  check_all_splits("a <think> tag", false, false, expected);
}

TEST(OutputParser, QwenToolCallBecomesACall) {
  // What the Qwen3 template renders for an assistant tool call, as the model emits it.
  const std::string reply =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n</tool_call>";
  ParsedOutput expected;
  expected.content = "Let me check.";
  expected.tool_calls.push_back({"get_weather", R"({"city": "Paris", "days": 2})"});  // as the model wrote it
  check_all_splits(reply, false, true, expected);
}

TEST(OutputParser, TwoCallsAfterReasoning) {
  const std::string reply =
      "I need two lookups.\n</think>\n\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"x\\\": 1}\"}\n</tool_call>";
  ParsedOutput expected;
  expected.reasoning = "I need two lookups.";
  expected.tool_calls.push_back({"a", "{}"});
  expected.tool_calls.push_back({"b", R"({"x": 1})"});  // a string argument is kept as its text
  check_all_splits(reply, true, true, expected);
}

TEST(OutputParser, UnreadableToolCallStaysContent) {
  const std::string reply = "x <tool_call>{not json}</tool_call> y";
  ParsedOutput expected;
  expected.content = "x<tool_call>{not json}</tool_call> y";  // whitespace before a call is layout
  check_all_splits(reply, false, true, expected);
}

TEST(OutputParser, UnclosedToolCallStaysContent) {
  ParsedOutput expected;
  expected.content = "<tool_call>\n{\"name\": \"a\"";
  check_all_splits("<tool_call>\n{\"name\": \"a\"", false, true, expected);
}

TEST(OutputParser, ToolTagsAreContentWithoutTools) {
  const std::string reply = "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>";
  ParsedOutput expected;
  expected.content = reply;
  check_all_splits(reply, false, false, expected);
}

TEST(OutputParser, OtherKeyOrderIsParsedWhole) {
  const std::string reply = "<tool_call>{\"arguments\": {\"q\": [1, 2]}, \"name\": \"search\"}</tool_call>";
  ParsedOutput expected;
  expected.tool_calls.push_back({"search", R"({"q":[1,2]})"});
  check_all_splits(reply, false, true, expected);
}

TEST(OutputParser, ArgumentsStreamAsTheyArrive) {
  OutputParser parser(false, true);
  EXPECT_TRUE(parser.feed("<tool_call>\n{\"name\": \"get_weather\", \"argu").empty());
  OutputDelta d = parser.feed("ments\": {\"city\": \"Pa");
  ASSERT_EQ(d.tool_calls.size(), 1u);  // the call starts with its name and the first fragment
  EXPECT_EQ(d.tool_calls[0].index, 0);
  EXPECT_EQ(d.tool_calls[0].name, "get_weather");
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"city\": \"Pa");
  d = parser.feed("ris\"}");  // this `}` may be the wrapper's: held back
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].name, "");
  EXPECT_EQ(d.tool_calls[0].arguments, "ris\"");
  d = parser.feed("}\n</tool_");  // now the first `}` is the arguments'
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, "}");
  d = parser.feed("call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].index, 1);
  EXPECT_EQ(d.tool_calls[0].name, "b");
  EXPECT_EQ(d.tool_calls[0].arguments, "{}");
  EXPECT_TRUE(parser.finish().empty());
  EXPECT_EQ(parser.tool_calls(), 2);
}

TEST(OutputParser, ReplyCutInsideArgumentsKeepsWhatCame) {
  ParsedOutput expected;
  expected.tool_calls.push_back({"f", R"({"a": 1)"});
  check_all_splits("<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1", false, true, expected);
}

TEST(OutputParser, HoldsBackOnlyWhatCouldBeATag) {
  OutputParser parser(false, true);
  EXPECT_EQ(parser.feed("Hello <tool").content, "Hello");  // "<tool" might open a call; " " might be trimmed
  EXPECT_EQ(parser.feed("box>").content, " <toolbox>");
  EXPECT_EQ(parser.finish().content, "");
}

}  // namespace
}  // namespace q3vl::server
