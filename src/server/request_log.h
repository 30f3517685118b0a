// One log line per HTTP request, on stderr, as text or as one JSON object:
//   2026-12-05T19:50:01.123Z POST /v1/chat/completions 200 1234.5ms id=chatcmpl-... prompt=31 completion=16 cached=0 ttft_ms=80.1 finish=stop
//   {"time":"...","method":"POST","path":"/v1/chat/completions","status":200,"ms":1234.5,"id":"...",...}
// Thread-safety: write_log_line may be called from any thread (one write(2) per line).
#pragma once

#include <optional>
#include <string>

#include "q3vl/server.h"

namespace q3vl::server {

// What a chat completion adds to its request's line (empty fields are left out).
struct RequestRecord {
  std::string id;
  std::optional<long long> prompt_tokens, completion_tokens, cached_tokens;
  std::optional<double> ttft_ms;
  std::string finish_reason;
  std::string error;  // the error message of a failed request
  bool stream = false;
  bool client_gone = false;
};

void write_log_line(LogFormat format, const std::string& method, const std::string& path, int status,
                    double ms, const std::string& remote, const RequestRecord& record);

// A free-form start-up / shutdown message in the same format ("msg" in JSON).
void write_log_message(LogFormat format, const std::string& message);

}  // namespace q3vl::server
