// q3vl::server — the OpenAI-compatible HTTP server behind `q3vl serve`.
//
// serve() listens on host:port at once, loads the package in a background thread
// (GET /health answers 503 until the model is ready, 200 after), then serves
//   POST /v1/chat/completions   OpenAI chat completions (JSON or SSE stream)
//   GET  /v1/models             the one model, named `model_name` (and /v1/models/{id})
//   GET  /health                {"status": "ok" | "loading"}
//   GET  /metrics               Prometheus text
//   GET  /                      the web chat page
// Requests run on a q3vl::Scheduler (scheduler.h) with `parallel` slots of
// `ctx_per_slot` KV tokens each; the server only parses, validates, streams and logs.
// Every limit below is enforced before work is queued and printed at start-up.
//
// Thread-safety: serve() blocks its caller until SIGINT / SIGTERM (or stop_server()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace q3vl::server {

enum class LogFormat { text, json };

struct ServerOptions {
  std::filesystem::path model;  // q3vl package directory
  std::string model_name;       // id reported by /v1/models and accepted as "model" ("" = the package's folder name)
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;                  // scheduler slots (requests decoded together)
  std::int64_t ctx_per_slot = 4096;  // KV tokens per slot (prompt + completion)
  std::int64_t max_queue = 64;       // requests waiting beyond busy slots; more get 429
  // Prompt tokens one scheduler step prefills for one request. Every generating stream waits
  // for that chunk, so it bounds their worst inter-token gap; smaller chunks trade a longer
  // time to first token (and lower prefill throughput) for a smoother stream.
  std::int64_t prefill_chunk = 256;
  std::string api_key;               // "" = no authentication
  // Local media (paths and file:// URLs) must resolve, symlinks followed, inside one of
  // these directories; none given = no local media at all.
  std::vector<std::filesystem::path> allowed_media_paths;
  bool allow_remote_media = false;              // fetch http(s) image URLs
  std::int64_t max_remote_media_bytes = 20 << 20;  // per fetched file
  int remote_media_timeout_ms = 10000;             // per fetch (connect + read)
  std::int64_t max_body_bytes = 32 << 20;          // request body (413 beyond)
  int max_images_per_request = 8;                  // images + videos in one request (413 beyond)
  std::int64_t max_pixels = 4096 * 4096;           // decoded width x height of an image or video frame (413 beyond)
  int threads = 0;                                 // ONNX Runtime intra-op threads (0 = all cores)
  bool allow_spinning = true;                      // `--no-spin` sets false
  // Create the vision session at startup, so no request pays it (`--lazy-vision` sets
  // false: a text-only deployment then never holds the tower's memory).
  bool preload_vision = true;
  LogFormat log_format = LogFormat::text;
  int shutdown_grace_ms = 10000;  // in-flight requests may finish this long after SIGINT / SIGTERM
};

// Checks the options (throws q3vl::Error(usage) naming the flag), binds the socket
// (throws q3vl::Error(io) if it cannot), loads the model in the background and serves
// until SIGINT / SIGTERM; then stops accepting, lets in-flight requests finish within
// shutdown_grace_ms, cancels the rest and returns 0. A model that fails to load is
// logged and ends serve() with q3vl::Error (its kind).
int serve(const ServerOptions& options);

}  // namespace q3vl::server
