#include "server/server_limits.h"

#include <string>

#include "q3vl/error.h"
#include "server/request_log.h"

namespace q3vl::server {
namespace {

void at_least(std::int64_t value, std::int64_t minimum, const char* flag) {
  if (value < minimum) {
    throw_error(ErrorKind::usage, "", flag, "at least " + std::to_string(minimum), std::to_string(value));
  }
}

}  // namespace

void check_options(const ServerOptions& o) {
  if (o.port < 0 || o.port > 65535) throw_error(ErrorKind::usage, "", "--port", "0..65535", std::to_string(o.port));
  at_least(o.parallel, 1, "--parallel");
  at_least(o.ctx_per_slot, 16, "--ctx-per-slot");
  at_least(o.max_queue, 0, "--max-queue");
  at_least(o.prefill_chunk, 1, "--prefill-chunk");
  at_least(o.max_body_bytes, 1024, "--max-body-bytes");
  at_least(o.max_images_per_request, 0, "--max-images-per-request");
  at_least(o.max_pixels, 1, "--max-pixels");
  at_least(o.threads, 0, "--threads");
  at_least(o.max_remote_media_bytes, 1, "--max-remote-media-bytes");
  at_least(o.remote_media_timeout_ms, 1, "--remote-media-timeout-ms");
  at_least(o.shutdown_grace_ms, 0, "--shutdown-grace-ms");
}

MediaLimits media_limits(const ServerOptions& o) {
  MediaLimits limits;
  limits.allowed_dirs = o.allowed_media_paths;
  limits.allow_remote = o.allow_remote_media;
  limits.max_remote_bytes = o.max_remote_media_bytes;
  limits.remote_timeout_ms = o.remote_media_timeout_ms;
  limits.max_media = o.max_images_per_request;
  limits.max_pixels = o.max_pixels;
  return limits;
}

void print_limits(const ServerOptions& o) {
  std::string dirs;
  for (const auto& dir : o.allowed_media_paths) dirs += (dirs.empty() ? "" : ", ") + dir.string();
  const std::pair<const char*, std::string> limits[] = {
      {"--host / --port", o.host + ":" + std::to_string(o.port)},
      {"--parallel (slots)", std::to_string(o.parallel)},
      {"--ctx-per-slot (KV tokens per slot)", std::to_string(o.ctx_per_slot)},
      {"--max-queue (waiting requests)", std::to_string(o.max_queue)},
      {"--prefill-chunk (prompt tokens per step)", std::to_string(o.prefill_chunk)},
      {"--max-body-bytes", std::to_string(o.max_body_bytes)},
      {"--max-images-per-request", std::to_string(o.max_images_per_request)},
      {"--max-pixels (decoded image / video frame)", std::to_string(o.max_pixels)},
      {"--allowed-media-path", dirs.empty() ? "none (local media disabled)" : dirs},
      {"--allow-remote-media", o.allow_remote_media ? "yes, up to " + std::to_string(o.max_remote_media_bytes) +
                                                          " bytes in " + std::to_string(o.remote_media_timeout_ms) + " ms"
                                                    : "no"},
      {"--api-key", o.api_key.empty() ? "none (no authentication)" : "set"},
      {"--threads", o.threads == 0 ? "all cores" : std::to_string(o.threads)},
      {"--shutdown-grace-ms", std::to_string(o.shutdown_grace_ms)},
  };
  for (const auto& [name, value] : limits) write_log_message(o.log_format, std::string("limit ") + name + ": " + value);
}

}  // namespace q3vl::server
