#include "server/request_log.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace q3vl::server {
namespace {

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[96];  // sized for any int values, so GCC can prove no truncation
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buffer;
}

void write_line(std::string line) {
  line += '\n';
  // One write(2): lines from concurrent requests never interleave.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

std::string fixed(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", x);
  return buffer;
}

}  // namespace

void write_log_line(LogFormat format, const std::string& method, const std::string& path, int status, double ms,
                    const std::string& remote, const RequestRecord& r) {
  if (format == LogFormat::json) {
    nlohmann::ordered_json j;
    j["time"] = utc_now();
    j["method"] = method;
    j["path"] = path;
    j["status"] = status;
    j["ms"] = std::round(ms * 10) / 10;
    j["remote"] = remote;
    if (!r.id.empty()) j["id"] = r.id;
    if (r.stream) j["stream"] = true;
    if (r.prompt_tokens) j["prompt_tokens"] = *r.prompt_tokens;
    if (r.completion_tokens) j["completion_tokens"] = *r.completion_tokens;
    if (r.cached_tokens) j["cached_tokens"] = *r.cached_tokens;
    if (r.ttft_ms) j["ttft_ms"] = std::round(*r.ttft_ms * 10) / 10;
    if (!r.finish_reason.empty()) j["finish_reason"] = r.finish_reason;
    if (r.client_gone) j["client_gone"] = true;
    if (!r.error.empty()) j["error"] = r.error;
    write_line(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
    return;
  }
  std::string line = utc_now() + " " + method + " " + path + " " + std::to_string(status) + " " + fixed(ms) + "ms " + remote;
  if (!r.id.empty()) line += " id=" + r.id;
  if (r.stream) line += " stream";
  if (r.prompt_tokens) line += " prompt=" + std::to_string(*r.prompt_tokens);
  if (r.completion_tokens) line += " completion=" + std::to_string(*r.completion_tokens);
  if (r.cached_tokens) line += " cached=" + std::to_string(*r.cached_tokens);
  if (r.ttft_ms) line += " ttft_ms=" + fixed(*r.ttft_ms);
  if (!r.finish_reason.empty()) line += " finish=" + r.finish_reason;
  if (r.client_gone) line += " client_gone";
  if (!r.error.empty()) line += " error=\"" + r.error + "\"";
  write_line(line);
}

void write_log_message(LogFormat format, const std::string& message) {
  if (format == LogFormat::json) {
    nlohmann::ordered_json j;
    j["time"] = utc_now();
    j["msg"] = message;
    write_line(j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  } else {
    write_line(utc_now() + " " + message);
  }
}

}  // namespace q3vl::server
