// q3vl::Error kind -> OpenAI error JSON + HTTP status, on hand-made errors shaped as the
// runtime and the scheduler raise them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace q3vl::server {
namespace {

Error make(ErrorKind kind, const std::string& field) { return Error({kind, "f", field, "x", "y", ""}); }

TEST(ApiError, KindsMapToOpenAiStatuses) {
  struct Case {
    ErrorKind kind;
    std::string field;
    int status;
    std::string type;
    nlohmann::json param;
    nlohmann::json code;
  };
  const Case cases[] = {
      {ErrorKind::format, "messages[0].content", 400, "invalid_request_error", "messages[0].content", nullptr},
      {ErrorKind::usage, "", 400, "invalid_request_error", nullptr, nullptr},
      {ErrorKind::io, "", 400, "invalid_request_error", nullptr, nullptr},
      {ErrorKind::unsupported, "", 400, "invalid_request_error", nullptr, "unsupported"},
      {ErrorKind::limit, "ctx_per_slot", 400, "invalid_request_error", "messages", "context_length_exceeded"},
      {ErrorKind::limit, "max_queue", 429, "rate_limit_exceeded", nullptr, "queue_full"},
      {ErrorKind::limit, "pixels", 413, "invalid_request_error", "pixels", "request_too_large"},
      {ErrorKind::unavailable, "scheduler", 503, "unavailable", nullptr, "unavailable"},
      {ErrorKind::runtime, "", 500, "server_error", nullptr, nullptr},
  };
  for (const Case& c : cases) {
    const Error error = make(c.kind, c.field);
    const ApiError api = from_error(error);
    EXPECT_EQ(api.status, c.status) << to_string(c.kind) << " " << c.field;
    const auto body = nlohmann::json::parse(error_body(api));
    EXPECT_EQ(body, (nlohmann::json{{"error", {{"message", error.what()}, {"type", c.type}, {"param", c.param},
                                                {"code", c.code}}}}))
        << body.dump();
  }
}

TEST(ApiError, InvalidUtf8InAMessageDoesNotThrow) {
  const ApiError api = bad_request("x", "bad \xff byte");
  EXPECT_EQ(nlohmann::json::parse(error_body(api))["error"]["message"], "bad \xEF\xBF\xBD byte");
}

}  // namespace
}  // namespace q3vl::server
