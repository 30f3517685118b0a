// The OpenAI response shapes, written out by hand for a reply with reasoning and two tool
// calls: the whole completion, the stream's delta chunks, and the usage chunk.
#include <gtest/gtest.h>

#include "server/chat_response.h"

namespace q3vl::server {
namespace {

CompletionHeader header() { return {"chatcmpl-abc123", 1700000000, "tiny"}; }

ParsedOutput reply_with_calls() {
  ParsedOutput reply;
  reply.reasoning = "need weather";
  reply.tool_calls.push_back({"get_weather", R"({"city":"Paris"})"});
  reply.tool_calls.push_back({"get_time", "{}"});
  return reply;
}

GenerateResult result(FinishReason reason) {
  GenerateResult r;
  r.finish_reason = reason;
  r.usage.prompt_tokens = 30;
  r.usage.completion_tokens = 12;
  r.usage.cached_tokens = 8;
  r.usage.image_tokens = 16;
  return r;
}

TEST(ChatResponse, CompletionWithToolCalls) {
  const Json j = completion_json(header(), reply_with_calls(), result(FinishReason::stop), std::nullopt);
  const Json expected = Json::parse(R"({
    "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1700000000, "model": "tiny",
    "choices": [{"index": 0,
      "message": {"role": "assistant", "content": null, "reasoning_content": "need weather",
        "tool_calls": [
          {"id": "call_abc123_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
          {"id": "call_abc123_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
      "logprobs": null, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42,
              "prompt_tokens_details": {"cached_tokens": 8}}})");
  EXPECT_EQ(j, expected) << j.dump(2);
}

TEST(ChatResponse, FinishReasons) {
  EXPECT_STREQ(finish_reason_name(FinishReason::stop, false), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::stop, true), "tool_calls");
  EXPECT_STREQ(finish_reason_name(FinishReason::stop_string, true), "stop");  // a stop string cut it
  EXPECT_STREQ(finish_reason_name(FinishReason::length, true), "length");
}

TEST(ChatResponse, StreamChunksCarryToolCallPieces) {
  OutputDelta start;
  start.tool_calls.push_back({1, "get_time", "{\"tz\""});
  EXPECT_EQ(delta_json(header(), start), Json::parse(R"({"tool_calls": [{"index": 1, "id": "call_abc123_1",
                                    "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\""}}]})"));
  OutputDelta more;
  more.tool_calls.push_back({1, "", ": 1}"});
  EXPECT_EQ(delta_json(header(), more),
            Json::parse(R"({"tool_calls": [{"index": 1, "function": {"arguments": ": 1}"}}]})"));
  LogprobEntry token{"Hi", {72, 105}, -0.5f, {{"Hi", {72, 105}, -0.5f}, {"Yo", {89, 111}, -1.5f}}};
  const Json chunk = chunk_json(header(), delta_json(header(), OutputDelta{"", "Hi", {}}),
                                std::vector<LogprobEntry>{token}, nullptr, true);
  EXPECT_EQ(chunk, Json::parse(R"({"id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "tiny", "choices": [{"index": 0, "delta": {"content": "Hi"},
      "logprobs": {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": [
        {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}, {"token": "Yo", "logprob": -1.5, "bytes": [89, 111]}]}]},
      "finish_reason": null}], "usage": null})"));
  EXPECT_EQ(usage_chunk_json(header(), result(FinishReason::length).usage)["choices"], Json::array());
  EXPECT_EQ(sse_event(Json{{"a", 1}}), "data: {\"a\":1}\n\n");
}

}  // namespace
}  // namespace q3vl::server

namespace q3vl::server {
namespace {

// Expected values from Python: bytes.decode("utf-8", errors="replace").encode().
TEST(ChatResponse, Utf8LossyMatchesPythonReplace) {
  const std::string r = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> cases[] = {
      {"abc", "abc"},
      {"\xE4\xBD\xA0", "\xE4\xBD\xA0"},
      {"\xE4\xBD", r},
      {"\xE4\xBD" "a", r + "a"},
      {"\xFF", r},
      {"\xED\xA0\x80", r + r + r},  // a surrogate
      {"\xF0\x9F\x98", r},          // a cut emoji
      {"\xC0\xAF", r + r},          // overlong
      {"\xF4\x90\x80\x80", r + r + r + r},  // above U+10FFFF
      {" \xE2\x82", " " + r},
  };
  for (const auto& [bytes, text] : cases) EXPECT_EQ(utf8_lossy(bytes), text) << bytes;
}

}  // namespace
}  // namespace q3vl::server
