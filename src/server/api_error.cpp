#include "server/api_error.h"

#include <nlohmann/json.hpp>

namespace q3vl::server {

ApiError::ApiError(int status_, std::string type_, std::string message, std::optional<std::string> param_,
                   std::optional<std::string> code_)
    : std::runtime_error(std::move(message)), status(status_), type(std::move(type_)), param(std::move(param_)),
      code(std::move(code_)) {}

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
