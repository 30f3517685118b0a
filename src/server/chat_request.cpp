#include "server/chat_request.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace q3vl::server {
namespace {

using Json = nlohmann::ordered_json;

// Depth of [ / { nesting outside strings; stops counting past the limit.
bool nesting_within(std::string_view body, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string type_of(const Json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  return v.type_name();
}

[[noreturn]] void wrong_type(const std::string& field, const std::string& expected, const Json& got) {
  throw bad_request(field, field + ": expected " + expected + ", got " + type_of(got));
}

double number_in(const Json& v, const std::string& field, double lo, double hi) {
  if (!v.is_number()) wrong_type(field, "a number", v);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) {
    throw bad_request(field, field + ": expected a number in [" + Json(lo).dump() + ", " + Json(hi).dump() +
                                 "], got " + v.dump());
  }
  return x;
}

std::int64_t integer_in(const Json& v, const std::string& field, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) wrong_type(field, "an integer", v);
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) {
    throw bad_request(field, field + ": expected an integer in [" + std::to_string(lo) + ", " +
                                 std::to_string(hi) + "], got " + v.dump());
  }
  const std::int64_t x = v.get<std::int64_t>();
  if (x < lo || x > hi) {
    throw bad_request(field, field + ": expected an integer in [" + std::to_string(lo) + ", " +
                                 std::to_string(hi) + "], got " + v.dump());
  }
  return x;
}

bool boolean(const Json& v, const std::string& field) {
  if (!v.is_boolean()) wrong_type(field, "a boolean", v);
  return v.get<bool>();
}

std::vector<std::string> stop_strings(const Json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) throw bad_request("stop", "stop: expected at most 4 strings, got " + std::to_string(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) wrong_type("stop[" + std::to_string(i) + "]", "a string", v[i]);
      out.push_back(v[i].get<std::string>());
    }
  } else {
    wrong_type("stop", "a string or an array of strings", v);
  }
  for (const auto& s : out) {
    if (s.empty()) throw bad_request("stop", "stop: expected non-empty strings, got \"\"");
  }
  return out;
}

// Checks the OpenAI `tools` shape; returns the array as JSON text for the template.
std::string tools_json(const Json& v) {
  if (!v.is_array()) wrong_type("tools", "an array", v);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string path = "tools[" + std::to_string(i) + "]";
    const Json& tool = v[i];
    if (!tool.is_object()) wrong_type(path, "an object", tool);
    for (const auto& [key, value] : tool.items()) {
      if (key != "type" && key != "function") {
        throw bad_request(path + "." + key, path + "." + key + ": unknown field (expected \"type\", \"function\")");
      }
    }
    if (!tool.contains("type") || tool["type"] != "function") {
      throw bad_request(path + ".type", path + ".type: expected \"function\"");
    }
    if (!tool.contains("function") || !tool["function"].is_object()) {
      throw bad_request(path + ".function", path + ".function: expected an object");
    }
    const Json& function = tool["function"];
    if (!function.contains("name") || !function["name"].is_string() || function["name"].get<std::string>().empty()) {
      throw bad_request(path + ".function.name", path + ".function.name: expected a non-empty string");
    }
    for (const auto& [key, value] : function.items()) {
      if (key != "name" && key != "description" && key != "parameters" && key != "strict") {
        throw bad_request(path + ".function." + key, path + ".function." + key + ": unknown field");
      }
    }
  }
  return v.dump();
}

// The function names of a `tools` array tools_json() accepted.
std::vector<std::string> tool_names(const Json& tools) {
  std::vector<std::string> names;
  for (const Json& tool : tools) names.push_back(tool["function"]["name"].get<std::string>());
  return names;
}

// OpenAI tool_choice: "auto" (the model decides), "none" (no calls: tool_call blocks stay
// text), "required" (at least one call: the reply is forced to be a call to one of the
// tools), or {"type": "function", "function": {"name": N}} (forced to call N). Sets how
// the reply is parsed and which names the runtime forces (GenerateOptions::tool_call_names).
void apply_tool_choice(const Json& choice, const Json& tools, ChatCompletionRequest& r) {
  const std::vector<std::string> names = tools.is_array() ? tool_names(tools) : std::vector<std::string>{};
  r.parse_tool_calls = !names.empty();
  if (choice.is_null()) return;
  std::string forced;  // a named function
  if (choice.is_string()) {
    const auto s = choice.get<std::string>();
    if (s == "auto") return;
    if (s == "none") {
      r.parse_tool_calls = false;
      return;
    }
    if (s != "required") {
      throw bad_request("tool_choice", "tool_choice: expected \"auto\", \"none\", \"required\" or "
                                       "{\"type\": \"function\", \"function\": {\"name\": ...}}, got " + choice.dump());
    }
  } else if (choice.is_object()) {
    for (const auto& [key, value] : choice.items()) {
      if (key != "type" && key != "function") {
        throw bad_request("tool_choice." + key, "tool_choice." + key + ": unknown field (expected \"type\", \"function\")");
      }
    }
    if (!choice.contains("type") || choice["type"] != "function") {
      throw bad_request("tool_choice.type", "tool_choice.type: expected \"function\"");
    }
    const Json* function = choice.contains("function") ? &choice["function"] : nullptr;
    if (function == nullptr || !function->is_object() || function->size() != 1 || !function->contains("name") ||
        !(*function)["name"].is_string()) {
      throw bad_request("tool_choice.function", "tool_choice.function: expected {\"name\": a string}");
    }
    forced = (*function)["name"].get<std::string>();
  } else {
    wrong_type("tool_choice", "a string or an object", choice);
  }
  if (names.empty()) {
    throw bad_request("tool_choice", "tool_choice: " + choice.dump() + " requires a non-empty \"tools\" array");
  }
  if (!forced.empty() && std::find(names.begin(), names.end(), forced) == names.end()) {
    throw bad_request("tool_choice", "tool_choice: function \"" + forced + "\" is not in \"tools\"");
  }
  r.options.tool_call_names = forced.empty() ? names : std::vector<std::string>{forced};
  // The forced call writes the name into a JSON string as it is (the templates do too).
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool forced_name = std::find(r.options.tool_call_names.begin(), r.options.tool_call_names.end(), names[i]) !=
                             r.options.tool_call_names.end();
    const bool plain = std::none_of(names[i].begin(), names[i].end(), [](char c) {
      return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
    });
    if (forced_name && !plain) {
      const std::string field = "tools[" + std::to_string(i) + "].function.name";
      throw bad_request(field, field + ": a forced tool call needs a name without '\"', '\\' or control characters");
    }
  }
  if (r.options.json_object) {
    throw bad_request("tool_choice", "tool_choice: a forced tool call cannot be combined with response_format "
                                     "\"json_object\"");
  }
}

}  // namespace

ChatCompletionRequest parse_chat_request(std::string_view body, const GenerateOptions& defaults,
                                         std::int64_t default_max_tokens) {
  if (!nesting_within(body, kMaxJsonDepth)) {
    throw bad_request("", "request body nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  Json j;
  try {
    j = Json::parse(body);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number beyond double (1e400), which would
    // otherwise escape as a 500.
    throw bad_request("", std::string("request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw bad_request("", "request body: expected a JSON object, got " + type_of(j));

  ChatCompletionRequest r;
  r.options = defaults;
  r.options.max_new_tokens = default_max_tokens;
  SamplingOptions& s = r.options.sampling;
  constexpr std::int64_t kMaxInt = std::numeric_limits<std::int64_t>::max();
  for (const auto& [key, v] : j.items()) {
    if (key == "model") {
      if (!v.is_string()) wrong_type("model", "a string", v);
      r.model = v.get<std::string>();
    } else if (key == "messages") {
      if (!v.is_array()) wrong_type("messages", "an array", v);
      if (v.empty()) throw bad_request("messages", "messages: expected at least one message, got []");
      try {
        r.messages = text::parse_messages_json(v.dump(), "request", "messages");
      } catch (const Error& e) {
        throw bad_request(e.info().field, e.what());
      }
    } else if (key == "stream") {
      if (!v.is_null()) r.stream = boolean(v, "stream");
    } else if (key == "stream_options") {
      if (v.is_null()) continue;
      if (!v.is_object()) wrong_type("stream_options", "an object", v);
      for (const auto& [k, x] : v.items()) {
        if (k != "include_usage") throw bad_request("stream_options." + k, "stream_options." + k + ": unknown field");
        r.include_usage = boolean(x, "stream_options.include_usage");
      }
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      if (!v.is_null()) r.options.max_new_tokens = integer_in(v, key, 1, kMaxInt);
    } else if (key == "temperature") {
      if (v.is_null()) continue;
      s.temperature = static_cast<float>(number_in(v, key, 0.0, 2.0));
      s.do_sample = s.temperature > 0.0f;
    } else if (key == "top_p") {
      if (!v.is_null()) s.top_p = static_cast<float>(number_in(v, key, std::numeric_limits<double>::min(), 1.0));
    } else if (key == "top_k") {
      // -1 means off, as vLLM spells it; 0 too.
      if (!v.is_null()) s.top_k = std::max<std::int64_t>(0, integer_in(v, key, -1, kMaxInt));
    } else if (key == "min_p") {
      if (!v.is_null()) s.min_p = static_cast<float>(number_in(v, key, 0.0, 1.0));
    } else if (key == "seed") {
      // OpenAI seeds are signed 64-bit; the bits are what matter.
      if (!v.is_null()) s.seed = static_cast<std::uint64_t>(integer_in(v, key, std::numeric_limits<std::int64_t>::min(), kMaxInt));
    } else if (key == "presence_penalty") {
      if (!v.is_null()) s.presence_penalty = static_cast<float>(number_in(v, key, -2.0, 2.0));
    } else if (key == "frequency_penalty") {
      if (!v.is_null()) s.frequency_penalty = static_cast<float>(number_in(v, key, -2.0, 2.0));
    } else if (key == "repetition_penalty") {
      if (!v.is_null()) s.repetition_penalty = static_cast<float>(number_in(v, key, 1e-3, 100.0));
    } else if (key == "stop") {
      if (!v.is_null()) r.options.stop_strings = stop_strings(v);
    } else if (key == "n") {
      if (!v.is_null() && integer_in(v, key, 1, kMaxInt) != 1) {
        throw bad_request("n", "n: expected 1 (one choice per request), got " + v.dump());
      }
    } else if (key == "logprobs") {
      if (!v.is_null()) r.logprobs = boolean(v, key);
    } else if (key == "top_logprobs") {
      if (!v.is_null()) r.top_logprobs = static_cast<int>(integer_in(v, key, 0, 20));
    } else if (key == "response_format") {
      if (v.is_null()) continue;
      if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) {
        throw bad_request("response_format", "response_format: expected {\"type\": \"text\" | \"json_object\"}");
      }
      const std::string type = v["type"].get<std::string>();
      if (type == "json_object") {
        r.options.json_object = true;
      } else if (type == "json_schema") {
        throw ApiError(400, "invalid_request_error",
                       "response_format.type: \"json_schema\" is not supported (use \"json_object\")",
                       "response_format.type", "unsupported");
      } else if (type != "text") {
        throw bad_request("response_format.type",
                          "response_format.type: expected \"text\" or \"json_object\", got " + v["type"].dump());
      }
    } else if (key == "tools") {
      if (v.is_null()) continue;
      r.options.tools_json = tools_json(v);
    } else if (key == "tool_choice") {
      continue;  // needs the tools: apply_tool_choice below
    } else if (key == "user") {
      if (!v.is_string() && !v.is_null()) wrong_type("user", "a string", v);
    } else {
      throw bad_request(key, key + ": unknown field");
    }
  }
  if (r.messages.empty()) throw bad_request("messages", "messages: required");
  if (j.contains("top_logprobs") && !j["top_logprobs"].is_null() && !r.logprobs) {
    throw bad_request("top_logprobs", "top_logprobs: requires \"logprobs\": true");
  }
  if (r.include_usage && !r.stream) {
    throw bad_request("stream_options", "stream_options: only allowed with \"stream\": true");
  }
  r.options.top_logprobs = r.logprobs ? r.top_logprobs : -1;
  apply_tool_choice(j.contains("tool_choice") ? j["tool_choice"] : Json(),
                    j.contains("tools") ? j["tools"] : Json(), r);
  return r;
}

}  // namespace q3vl::server
