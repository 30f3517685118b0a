#include "server/api_error.h"

#include <nlohmann/json.hpp>

#include <cstdio>

namespace q3vl::server {
namespace {

// Control characters written as \u00XX. Messages and params quote client-sent names (an
// unknown field's key may hold a NUL or a newline): kept raw, a NUL would cut what() short
// of the param it names, and a newline would forge a line in the request log.
std::string visible(std::string text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04X", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> visible(std::optional<std::string> text) {
  if (text) return visible(std::move(*text));
  return text;
}

}  // namespace

ApiError::ApiError(int status_, std::string type_, std::string message, std::optional<std::string> param_,
                   std::optional<std::string> code_)
    : std::runtime_error(visible(std::move(message))), status(status_), type(std::move(type_)),
      param(visible(std::move(param_))), code(std::move(code_)) {}

ApiError bad_request(const std::string& param, const std::string& message) {
  return ApiError(400, "invalid_request_error", message, param);
}

ApiError from_error(const Error& error) {
  const ErrorInfo& info = error.info();
  std::optional<std::string> param;
  if (!info.field.empty()) param = info.field;
  switch (error.kind()) {
    case ErrorKind::limit:
      if (info.field == "max_queue") return ApiError(429, "rate_limit_exceeded", error.what(), {}, "queue_full");
      if (info.field == "ctx_per_slot") {
        return ApiError(400, "invalid_request_error", error.what(), "messages", "context_length_exceeded");
      }
      return ApiError(413, "invalid_request_error", error.what(), param, "request_too_large");
    case ErrorKind::runtime: return ApiError(500, "server_error", error.what(), param);
    case ErrorKind::unavailable: return ApiError(503, "unavailable", error.what(), {}, "unavailable");
    case ErrorKind::unsupported:
      return ApiError(400, "invalid_request_error", error.what(), param, "unsupported");
    case ErrorKind::io:
    case ErrorKind::format:
    case ErrorKind::config:
    case ErrorKind::shape:
    case ErrorKind::usage: return ApiError(400, "invalid_request_error", error.what(), param);
  }
  return ApiError(500, "server_error", error.what(), param);
}

std::string error_body(const ApiError& error) {
  nlohmann::ordered_json j;
  j["error"] = {{"message", error.what()},
                {"type", error.type},
                {"param", error.param ? nlohmann::ordered_json(*error.param) : nlohmann::ordered_json()},
                {"code", error.code ? nlohmann::ordered_json(*error.code) : nlohmann::ordered_json()}};
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace q3vl::server
