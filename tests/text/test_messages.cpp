// OpenAI-shape JSON -> Message: accepted shapes, media url kinds, and the JSON
// path + expectation in every error.
#include <gtest/gtest.h>

#include "q3vl/error.h"
#include "q3vl/messages.h"

namespace q3vl::text {
namespace {

std::string error_of(const std::string& json) {
  try {
    parse_messages_json(json, "req.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::format) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted " << json;
  return "";
}

TEST(Messages, ParsesTextPartsMediaAndToolCalls) {
  const auto messages = parse_messages_json(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [
      {"type": "text", "text": "Look"},
      {"type": "image_url", "image_url": {"url": "/data/a b.png", "detail": "high"}},
      {"type": "image_url", "image_url": "file:///data/x%20y.jpg"},
      {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
      {"type": "image", "image": "hf.png"},
      {"type": "video", "path": "clip.mp4"}]},
    {"role": "assistant", "content": null, "reasoning": "hmm", "tool_calls": [
      {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}},
      {"name": "g", "arguments": {"b": [1, 2.5]}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "ok", "name": "f"},
    {"role": "assistant", "content": "done", "refusal": null, "annotations": []}
  ])",
                                            "req.json");
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(std::get<std::string>(messages[0].content), "Be brief.");
  const auto& parts = std::get<std::vector<ContentPart>>(messages[1].content);
  ASSERT_EQ(parts.size(), 7u);
  EXPECT_EQ(parts[0].type, ContentPart::Type::text);
  EXPECT_EQ(parts[0].text, "Look");
  EXPECT_EQ(parts[1].type, ContentPart::Type::image);
  EXPECT_EQ(parts[1].media.kind, MediaSource::Kind::path);
  EXPECT_EQ(parts[1].media.location, "/data/a b.png");
  EXPECT_EQ(parts[2].media.kind, MediaSource::Kind::path);
  EXPECT_EQ(parts[2].media.location, "/data/x y.jpg");
  EXPECT_EQ(parts[3].type, ContentPart::Type::video);
  EXPECT_EQ(parts[3].media.kind, MediaSource::Kind::http_url);
  EXPECT_EQ(parts[4].media.kind, MediaSource::Kind::data_url);
  EXPECT_EQ(parts[4].media.location, "data:image/png;base64,AAAA");
  EXPECT_EQ(parts[5].type, ContentPart::Type::image);
  EXPECT_EQ(parts[5].media.location, "hf.png");
  EXPECT_EQ(parts[6].type, ContentPart::Type::video);
  EXPECT_EQ(parts[6].media.location, "clip.mp4");

  const auto& call_turn = messages[2];
  EXPECT_TRUE(std::holds_alternative<std::monostate>(call_turn.content));
  EXPECT_EQ(call_turn.reasoning_content, std::optional<std::string>("hmm"));
  ASSERT_EQ(call_turn.tool_calls.size(), 2u);
  EXPECT_EQ(call_turn.tool_calls[0].id, "c1");
  EXPECT_EQ(call_turn.tool_calls[0].name, "f");
  EXPECT_EQ(call_turn.tool_calls[0].arguments, "{\"a\": 1}");
  EXPECT_TRUE(call_turn.tool_calls[0].arguments_is_string);
  EXPECT_EQ(call_turn.tool_calls[1].name, "g");
  EXPECT_EQ(call_turn.tool_calls[1].arguments, "{\"b\":[1,2.5]}");
  EXPECT_FALSE(call_turn.tool_calls[1].arguments_is_string);
  EXPECT_EQ(messages[3].tool_call_id, std::optional<std::string>("c1"));
  EXPECT_EQ(messages[3].name, std::optional<std::string>("f"));
}

TEST(Messages, ErrorsGiveJsonPathAndExpectation) {
  EXPECT_EQ(error_of(R"([{"content": "x"}])"), "req.json: messages[0].role: expected a value, got nothing (missing key)");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": 5}])"),
            "req.json: messages[0].content: expected string, array of parts or null, got number 5");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": 3}}]}])"),
            "req.json: messages[0].content[1].image_url.url: expected string, got number 3");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": [{"type": "audio_url"}]}])"),
            "req.json: messages[0].content[0].type: expected one of \"text\", \"image_url\", \"video_url\", "
            "\"image\", \"video\", got string \"audio_url\"");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "ftp://h/v.mp4"}}]}])"),
            "req.json: messages[0].content[0].video_url.url: expected a local path or a file, http(s) or data: URL, "
            "got URL scheme \"ftp\"");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": "x", "colour": "red"}])").rfind("req.json: messages[0].colour: expected one of the keys", 0), 0u);
  EXPECT_EQ(error_of(R"([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": 1}}]}])"),
            "req.json: messages[0].tool_calls[0].function.arguments: expected string or object, got number 1");
  EXPECT_EQ(error_of(R"({"role": "user"})"), "req.json: messages: expected array of messages, got object");
  EXPECT_EQ(error_of(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}])"),
            "req.json: messages[0].content[0].image_url.url: expected a path or URL, got an empty string");
  EXPECT_EQ(error_of("[{\"role\": "),
            "req.json: line 1, column 11: syntax error while parsing value - unexpected end of input; "
            "expected '[', '{', or a literal");
  // Nesting beyond io::JsonLimits::max_depth (128) is a limit error before the value is built.
  try {
    parse_messages_json(std::string(129, '[') + std::string(129, ']'), "req.json");
    ADD_FAILURE() << "129 levels accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::limit);
    EXPECT_STREQ(e.what(), "req.json: nesting depth: expected at most 128 levels (JsonLimits::max_depth), got deeper");
  }
  EXPECT_EQ(error_of(std::string(128, '[') + std::string(128, ']')).rfind("req.json: messages[0]", 0), 0u);
}

TEST(Messages, ChatRequestFileShapes) {
  const auto bare = parse_chat_request_json(R"([{"role": "user", "content": "hi"}])", "a.json");
  EXPECT_EQ(bare.messages.size(), 1u);
  EXPECT_FALSE(bare.tools_json.has_value());
  const auto body = parse_chat_request_json(
      R"({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"z": 1, "a": 2}]})", "b.json");
  EXPECT_EQ(body.messages.size(), 1u);
  EXPECT_EQ(body.tools_json, std::optional<std::string>("[{\"z\":1,\"a\":2}]"));  // key order kept
  try {
    parse_chat_request_json(R"({"tools": []})", "c.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "c.json: messages: expected a value, got nothing (missing key)");
  }
}

}  // namespace
}  // namespace q3vl::text
