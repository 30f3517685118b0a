// parse_chat_request against hand-written OpenAI bodies: every field lands in the
// GenerateOptions the runtime gets, defaults survive, and each bad body is a 400 that
// names the field at fault.
#include <gtest/gtest.h>

#include <string>

#include "server/api_error.h"
#include "server/chat_request.h"

namespace q3vl::server {
namespace {

GenerateOptions defaults() {
  GenerateOptions o;
  o.sampling.temperature = 0.7f;
  o.sampling.top_p = 0.8f;
  o.sampling.top_k = 20;
  o.stop_token_ids = {151645, 151643};
  return o;
}

ChatCompletionRequest parse(const std::string& body) { return parse_chat_request(body, defaults(), 4096); }

// The ApiError a body gives (fails the test if it parses).
ApiError error_of(const std::string& body) {
  try {
    parse(body);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "parsed: " << body;
  return ApiError(0, "", "");
}

constexpr const char* kUser = R"("messages": [{"role": "user", "content": "hi"}])";

TEST(ChatRequest, MinimalBodyKeepsTheModelDefaults) {
  const auto r = parse(std::string("{") + kUser + "}");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(std::get<std::string>(r.messages[0].content), "hi");
  EXPECT_FLOAT_EQ(r.options.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(r.options.sampling.top_p, 0.8f);
  EXPECT_EQ(r.options.sampling.top_k, 20);
  EXPECT_EQ(r.options.max_new_tokens, 4096);  // unset: what the slot holds
  EXPECT_EQ(r.options.stop_token_ids, (std::vector<std::int64_t>{151645, 151643}));
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.options.top_logprobs, -1);
  EXPECT_FALSE(r.options.json_object);
  EXPECT_FALSE(r.parse_tool_calls);
}

TEST(ChatRequest, EveryFieldReachesTheOptions) {
  const auto r = parse(std::string("{") + kUser + R"(, "model": "m", "stream": true,
      "stream_options": {"include_usage": true}, "max_completion_tokens": 17, "temperature": 0,
      "top_p": 0.5, "top_k": 3, "min_p": 0.1, "seed": -1, "presence_penalty": 0.5,
      "frequency_penalty": -0.25, "repetition_penalty": 1.1, "stop": ["END", "\n\n"], "n": 1,
      "logprobs": true, "top_logprobs": 2, "response_format": {"type": "json_object"},
      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
      "tool_choice": "auto", "user": "u"})");
  EXPECT_EQ(r.model, "m");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.options.max_new_tokens, 17);
  EXPECT_TRUE(r.options.sampling.greedy());
  EXPECT_FLOAT_EQ(r.options.sampling.top_p, 0.5f);
  EXPECT_EQ(r.options.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(r.options.sampling.min_p, 0.1f);
  EXPECT_EQ(r.options.sampling.seed, std::numeric_limits<std::uint64_t>::max());  // -1's bits
  EXPECT_FLOAT_EQ(r.options.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.options.sampling.frequency_penalty, -0.25f);
  EXPECT_FLOAT_EQ(r.options.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(r.options.stop_strings, (std::vector<std::string>{"END", "\n\n"}));
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.options.top_logprobs, 2);
  EXPECT_TRUE(r.options.json_object);
  ASSERT_TRUE(r.options.tools_json);
  EXPECT_EQ(*r.options.tools_json, R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
  EXPECT_TRUE(r.parse_tool_calls);
}

TEST(ChatRequest, PositiveTemperatureSamplesAndStopStringAlone) {
  const auto r = parse(std::string("{") + kUser + R"(, "temperature": 1.5, "stop": "x", "max_tokens": 5})");
  EXPECT_FALSE(r.options.sampling.greedy());
  EXPECT_FLOAT_EQ(r.options.sampling.temperature, 1.5f);
  EXPECT_EQ(r.options.stop_strings, std::vector<std::string>{"x"});
  EXPECT_EQ(r.options.max_new_tokens, 5);
}

TEST(ChatRequest, ToolChoiceNoneRendersToolsButParsesNoCalls) {
  const auto r = parse(std::string("{") + kUser +
                       R"(, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"})");
  EXPECT_TRUE(r.options.tools_json.has_value());
  EXPECT_FALSE(r.parse_tool_calls);
}

constexpr const char* kTwoTools =
    R"("tools": [{"type": "function", "function": {"name": "get_weather"}},
                 {"type": "function", "function": {"name": "get_time"}}])";

TEST(ChatRequest, ToolChoiceRequiredForcesACallToAnyTool) {
  // tool_choice before tools: the order of keys does not matter.
  const auto r = parse(std::string("{") + kUser + R"(, "tool_choice": "required", )" + kTwoTools + "}");
  EXPECT_TRUE(r.parse_tool_calls);
  EXPECT_EQ(r.options.tool_call_names, (std::vector<std::string>{"get_weather", "get_time"}));
  const auto automatic = parse(std::string("{") + kUser + ", " + kTwoTools + R"(, "tool_choice": "auto"})");
  EXPECT_TRUE(automatic.parse_tool_calls);
  EXPECT_TRUE(automatic.options.tool_call_names.empty());
}

TEST(ChatRequest, NamedToolChoiceForcesThatFunction) {
  const auto r = parse(std::string("{") + kUser + ", " + kTwoTools +
                       R"(, "tool_choice": {"type": "function", "function": {"name": "get_time"}}})");
  EXPECT_TRUE(r.parse_tool_calls);
  EXPECT_EQ(r.options.tool_call_names, std::vector<std::string>{"get_time"});
}

TEST(ChatRequest, MediaPartsParseAsTheSharedMessageShape) {
  const auto r = parse(R"({"messages": [{"role": "user", "content": [
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
      {"type": "video_url", "video_url": {"url": "file:///media/clip.mov"}},
      {"type": "text", "text": "what is this?"}]}]})");
  const auto& parts = std::get<std::vector<text::ContentPart>>(r.messages[0].content);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].media.kind, text::MediaSource::Kind::data_url);
  EXPECT_EQ(parts[1].media.kind, text::MediaSource::Kind::path);
  EXPECT_EQ(parts[1].media.location, "/media/clip.mov");
  EXPECT_EQ(parts[2].text, "what is this?");
}

struct BadBody {
  std::string body;
  int status;
  std::string param;
};

TEST(ChatRequest, BadBodiesAre400sNamingTheField) {
  const std::string user = kUser;
  const std::string tools = kTwoTools;
  const BadBody cases[] = {
      {R"({"messages": [)", 400, ""},                                    // truncated JSON
      {"[1, 2]", 400, ""},                                               // not an object
      {R"({"model": "m"})", 400, "messages"},                            // no messages
      {R"({"messages": []})", 400, "messages"},
      {R"({"messages": "hi"})", 400, "messages"},
      {R"({"messages": [{"role": "user", "content": 5}]})", 400, "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]})", 400, "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 3}}]}]})", 400,
       "messages[0].content[0].image_url.url"},
      {(R"({"temperature": "hot", )" + user + "}"), 400, "temperature"},
      {(R"({"temperature": 2.5, )" + user + "}"), 400, "temperature"},
      {(R"({"top_p": 0, )" + user + "}"), 400, "top_p"},
      {(R"({"max_tokens": 0, )" + user + "}"), 400, "max_tokens"},
      {(R"({"max_tokens": 1.5, )" + user + "}"), 400, "max_tokens"},
      {(R"({"n": 2, )" + user + "}"), 400, "n"},
      {(R"({"stop": [1], )" + user + "}"), 400, "stop[0]"},
      {(R"({"stop": ["a","b","c","d","e"], )" + user + "}"), 400, "stop"},
      {(R"({"top_logprobs": 3, )" + user + "}"), 400, "top_logprobs"},
      {(R"({"logprobs": true, "top_logprobs": 21, )" + user + "}"), 400, "top_logprobs"},
      {(R"({"response_format": {"type": "xml"}, )" + user + "}"), 400, "response_format.type"},
      {(R"({"response_format": {"type": "json_schema"}, )" + user + "}"), 400, "response_format.type"},
      {(R"({"tools": [{"type": "function"}], )" + user + "}"), 400, "tools[0].function"},
      {(R"({"tool_choice": "required", )" + user + "}"), 400, "tool_choice"},  // no tools
      {(R"({"tool_choice": "sometimes", )" + user + "}"), 400, "tool_choice"},
      {(R"({"tool_choice": 1, )" + user + "}"), 400, "tool_choice"},
      {(R"({"tool_choice": {"type": "function", "function": {"name": "nope"}}, )" + tools + ", " + user + "}"),
       400, "tool_choice"},
      {(R"({"tool_choice": {"type": "function", "function": {}}, )" + tools + ", " + user + "}"), 400,
       "tool_choice.function"},
      {(R"({"tool_choice": {"type": "code", "function": {"name": "get_time"}}, )" + tools + ", " + user + "}"),
       400, "tool_choice.type"},
      {(R"({"tool_choice": {"type": "function", "name": "get_time"}, )" + tools + ", " + user + "}"), 400,
       "tool_choice.name"},
      {(R"({"tool_choice": "required", "response_format": {"type": "json_object"}, )" + tools + ", " +
        user + "}"), 400, "tool_choice"},
      {(R"({"tool_choice": "required", "tools": [{"type": "function", "function": {"name": "a\"b"}}], )" + user +
        "}"), 400, "tools[0].function.name"},
      {(R"({"stream_options": {"include_usage": true}, )" + user + "}"), 400, "stream_options"},
      {(R"({"frobnicate": 1, )" + user + "}"), 400, "frobnicate"},
      {(R"({"seed": 1e30, )" + user + "}"), 400, "seed"},
      {(R"({"temperature": 1e400, )" + user + "}"), 400, ""},  // beyond double: not a 500 (fuzz finding)
  };
  for (const BadBody& c : cases) {
    const ApiError e = error_of(c.body);
    EXPECT_EQ(e.status, c.status) << c.body;
    EXPECT_EQ(e.type, "invalid_request_error") << c.body;
    EXPECT_EQ(e.param.value_or(""), c.param) << c.body << " -> " << e.what();
    if (!c.param.empty()) {
      EXPECT_NE(std::string(e.what()).find(c.param), std::string::npos) << e.what();
    }
  }
}

TEST(ChatRequest, ControlCharactersInAFieldNameAreEscapedInParamAndMessage) {
  // Long fuzz finding: an unknown key holding a NUL cut what() short of the param it named;
  // a newline would forge a line in the request log. Both come back as \u00XX.
  const std::string user = kUser;
  const ApiError e = error_of(R"({"tools": [{"type": "function", "f\u0000x\ny": 1}], )" + user + "}");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param.value_or(""), "tools[0].f\\u0000x\\u000Ay");
  const std::string message = e.what();
  EXPECT_EQ(message, "tools[0].f\\u0000x\\u000Ay: unknown field (expected \"type\", \"function\")");
  // The same through the messages parser (a q3vl::Error turned into the ApiError).
  const ApiError nested = error_of(R"({"messages": [{"r0\u0000/x": 1, "role": "user", "content": "hi"}]})");
  EXPECT_EQ(nested.status, 400);
  ASSERT_TRUE(nested.param.has_value());
  EXPECT_NE(nested.param->find("r0\\u0000/x"), std::string::npos) << *nested.param;
  EXPECT_NE(std::string(nested.what()).find(*nested.param), std::string::npos) << nested.what();
  const ApiError top = error_of(R"({"a\rb": 1, )" + user + "}");
  EXPECT_EQ(top.param.value_or(""), "a\\u000Db");
  EXPECT_EQ(std::string(top.what()), "a\\u000Db: unknown field");
}

TEST(ChatRequest, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = "{\"messages\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  const ApiError e = error_of(deep);
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(std::string(e.what()).find("deeper than 64"), std::string::npos) << e.what();
  // Brackets inside strings are text, not nesting.
  const auto r = parse(R"({"messages": [{"role": "user", "content": ")" + std::string(1000, '[') + R"("}]})");
  EXPECT_EQ(std::get<std::string>(r.messages[0].content), std::string(1000, '['));
}

}  // namespace
}  // namespace q3vl::server
