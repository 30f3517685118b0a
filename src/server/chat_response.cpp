#include "server/chat_response.h"

namespace q3vl::server {

std::string utf8_lossy(std::string_view bytes) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // Continuation count and the allowed range of the first continuation byte
    // (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
    int need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    std::size_t j = i + 1;
    int k = 0;
    for (; k < need && j < bytes.size(); ++k, ++j) {
      const auto d = static_cast<unsigned char>(bytes[j]);
      if (d < (k == 0 ? lo : 0x80) || d > (k == 0 ? hi : 0xBF)) break;
    }
    if (need > 0 && k == need) {
      out.append(bytes.substr(i, j - i));
    } else {
      out += kReplacement;
    }
    i = j;
  }
  return out;
}

const char* finish_reason_name(FinishReason reason, bool made_tool_calls) {
  switch (reason) {
    case FinishReason::length: return "length";
    case FinishReason::stop: return made_tool_calls ? "tool_calls" : "stop";
    case FinishReason::stop_string:
    case FinishReason::cancelled: return "stop";
  }
  return "stop";
}

std::string tool_call_id(const CompletionHeader& header, int index) {
  return "call_" + header.id.substr(header.id.find('-') + 1) + "_" + std::to_string(index);
}

Json usage_json(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
}

Json logprobs_json(const std::vector<LogprobEntry>& tokens) {
  Json content = Json::array();
  for (const auto& t : tokens) {
    Json top = Json::array();
    for (const auto& a : t.top) top.push_back({{"token", a.token}, {"logprob", a.logprob}, {"bytes", a.bytes}});
    content.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", t.bytes}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

Json completion_json(const CompletionHeader& header, const ParsedOutput& reply, const GenerateResult& result,
                     const std::optional<std::vector<LogprobEntry>>& logprobs) {
  Json message;
  message["role"] = "assistant";
  const bool calls = !reply.tool_calls.empty();
  message["content"] = calls && reply.content.empty() ? Json() : Json(reply.content);
  if (!reply.reasoning.empty()) message["reasoning_content"] = reply.reasoning;
  if (calls) {
    Json list = Json::array();
    for (std::size_t i = 0; i < reply.tool_calls.size(); ++i) {
      list.push_back({{"id", tool_call_id(header, static_cast<int>(i))},
                      {"type", "function"},
                      {"function", {{"name", reply.tool_calls[i].name}, {"arguments", reply.tool_calls[i].arguments}}}});
    }
    message["tool_calls"] = std::move(list);
  }
  Json choice;
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["logprobs"] = logprobs ? logprobs_json(*logprobs) : Json();
  choice["finish_reason"] = finish_reason_name(result.finish_reason, calls);
  Json out;
  out["id"] = header.id;
  out["object"] = "chat.completion";
  out["created"] = header.created;
  out["model"] = header.model;
  out["choices"] = Json::array({std::move(choice)});
  out["usage"] = usage_json(result.usage);
  return out;
}

Json chunk_json(const CompletionHeader& header, Json delta, const std::optional<std::vector<LogprobEntry>>& logprobs,
                const char* finish_reason, bool include_usage_null) {
  Json choice;
  choice["index"] = 0;
  choice["delta"] = std::move(delta);
  choice["logprobs"] = logprobs ? logprobs_json(*logprobs) : Json();
  choice["finish_reason"] = finish_reason ? Json(finish_reason) : Json();
  Json out;
  out["id"] = header.id;
  out["object"] = "chat.completion.chunk";
  out["created"] = header.created;
  out["model"] = header.model;
  out["choices"] = Json::array({std::move(choice)});
  if (include_usage_null) out["usage"] = Json();
  return out;
}

Json usage_chunk_json(const CompletionHeader& header, const Usage& usage) {
  Json out;
  out["id"] = header.id;
  out["object"] = "chat.completion.chunk";
  out["created"] = header.created;
  out["model"] = header.model;
  out["choices"] = Json::array();
  out["usage"] = usage_json(usage);
  return out;
}

Json delta_json(const CompletionHeader& header, const OutputDelta& delta) {
  Json out = Json::object();
  if (!delta.reasoning.empty()) out["reasoning_content"] = delta.reasoning;
  if (!delta.content.empty()) out["content"] = delta.content;
  if (!delta.tool_calls.empty()) {
    Json list = Json::array();
    for (const ToolCallDelta& d : delta.tool_calls) {
      Json call;
      call["index"] = d.index;
      if (!d.name.empty()) {
        call["id"] = tool_call_id(header, d.index);
        call["type"] = "function";
        call["function"] = {{"name", d.name}, {"arguments", d.arguments}};
      } else {
        call["function"] = {{"arguments", d.arguments}};
      }
      list.push_back(std::move(call));
    }
    out["tool_calls"] = std::move(list);
  }
  return out;
}

std::string json_text(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string sse_event(const Json& data) { return "data: " + json_text(data) + "\n\n"; }

}  // namespace q3vl::server
