#include "text/template_context.h"

#include "io/json_file.h"
#include "q3vl/error.h"

namespace q3vl::text {
namespace {

using Json = io::Json;

// Placeholder for media held in memory: templates only test that the key is
// present, as HF replaces non-JSON objects with "<TypeName>" (_plain_template_data).
constexpr const char* kBytesPlaceholder = "<bytes>";

Json part_to_json(const ContentPart& part) {
  switch (part.type) {
    case ContentPart::Type::text:
      return Json{{"type", "text"}, {"text", part.text}};
    case ContentPart::Type::image:
    case ContentPart::Type::video: {
      const char* type = part.type == ContentPart::Type::image ? "image" : "video";
      const std::string value =
          part.media.kind == MediaSource::Kind::bytes ? std::string(kBytesPlaceholder) : part.media.location;
      return Json{{"type", type}, {type, value}};
    }
  }
  return Json{};
}

Json tool_call_to_json(const ToolCall& call) {
  Json function{{"name", call.name}};
  if (call.arguments_is_string) {
    function["arguments"] = call.arguments;
  } else {
    function["arguments"] = io::parse_json(call.arguments, "tool call " + call.name + ": arguments");
  }
  Json json;
  if (!call.id.empty()) json["id"] = call.id;
  json["type"] = "function";
  json["function"] = std::move(function);
  return json;
}

Json parse_variable(const std::string& text, const std::string& name) {
  return io::parse_json(text, "template variable " + name);
}

}  // namespace

Json message_to_template_json(const Message& message) {
  Json json;
  // HF's alias puts "thinking" first: {"thinking": r, **message, "reasoning_content": r}.
  if (message.reasoning_content) json["thinking"] = *message.reasoning_content;
  json["role"] = message.role;
  if (const auto* text = std::get_if<std::string>(&message.content)) {
    json["content"] = *text;
  } else if (const auto* parts = std::get_if<std::vector<ContentPart>>(&message.content)) {
    Json list = Json::array();
    for (const auto& part : *parts) list.push_back(part_to_json(part));
    json["content"] = std::move(list);
  }
  if (!message.tool_calls.empty()) {
    Json calls = Json::array();
    for (const auto& call : message.tool_calls) calls.push_back(tool_call_to_json(call));
    json["tool_calls"] = std::move(calls);
  }
  if (message.tool_call_id) json["tool_call_id"] = *message.tool_call_id;
  if (message.name) json["name"] = *message.name;
  if (message.reasoning_content) json["reasoning_content"] = *message.reasoning_content;
  return json;
}

std::string build_template_context(const std::vector<Message>& messages, const RenderOptions& options,
                                   const SpecialTokens& special_tokens) {
  Json context;
  Json list = Json::array();
  for (const auto& message : messages) list.push_back(message_to_template_json(message));
  context["messages"] = std::move(list);
  context["tools"] = options.tools_json ? parse_variable(*options.tools_json, "tools") : Json(nullptr);
  context["documents"] = nullptr;
  context["add_generation_prompt"] = options.add_generation_prompt;
  // transformers: template_kwargs = {**special_tokens_map, **kwargs}.
  const std::pair<const char*, const std::optional<std::string>*> tokens[] = {
      {"bos_token", &special_tokens.bos_token}, {"eos_token", &special_tokens.eos_token},
      {"unk_token", &special_tokens.unk_token}, {"sep_token", &special_tokens.sep_token},
      {"pad_token", &special_tokens.pad_token}, {"cls_token", &special_tokens.cls_token},
      {"mask_token", &special_tokens.mask_token}};
  for (const auto& [key, value] : tokens) {
    if (*value) context[key] = **value;
  }
  if (options.enable_thinking) context["enable_thinking"] = *options.enable_thinking;
  if (options.add_vision_id) context["add_vision_id"] = *options.add_vision_id;
  for (const auto& [name, value] : options.extra_variables_json) context[name] = parse_variable(value, name);
  try {
    return context.dump();
  } catch (const nlohmann::json::type_error& e) {
    // Only reachable with invalid UTF-8 in a message built in code (parsed JSON is valid).
    throw_error(ErrorKind::format, "messages", std::string("text is not valid UTF-8: ") + e.what());
  }
}

}  // namespace q3vl::text
