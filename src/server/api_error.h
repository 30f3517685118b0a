// OpenAI error responses: {"error": {"message", "type", "param", "code"}} + HTTP status.
// Every failure a client can cause ends as an ApiError; handlers throw it and the
// HTTP layer turns it into a response, so no error path can leave a connection hanging.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include "q3vl/error.h"

namespace q3vl::server {

// The message and param are stored with control characters escaped (\u00XX): they quote
// client-sent names, and are logged.
struct ApiError : std::runtime_error {
  int status;                 // HTTP status
  std::string type;           // "invalid_request_error", "authentication_error", ...
  std::optional<std::string> param;  // the request field at fault (dotted path), if any
  std::optional<std::string> code;   // machine-readable code, e.g. "model_not_found"

  ApiError(int status, std::string type, std::string message, std::optional<std::string> param = {},
           std::optional<std::string> code = {});
};

// 400 invalid_request_error naming `param`.
ApiError bad_request(const std::string& param, const std::string& message);

// Maps a q3vl::Error raised while handling a request: format / usage / config / shape /
// unsupported -> 400, limit -> 413 (media and body limits) or 400 context_length_exceeded
// (a prompt longer than a slot; field "ctx_per_slot"), or 429 (field "max_queue"), io -> 400
// (a client-named file that cannot be read), unavailable -> 503, runtime -> 500.
ApiError from_error(const Error& error);

// The response body of an error.
std::string error_body(const ApiError& error);

}  // namespace q3vl::server
