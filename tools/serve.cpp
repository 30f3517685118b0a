// q3vl serve: the OpenAI-compatible HTTP server (src/server/, include/q3vl/server.h).
//   q3vl serve --model PKG [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx-per-slot T]
//              [--api-key KEY] [--allowed-media-path DIR]... [--allow-remote-media]
//              [--max-body-bytes N] [--max-images-per-request N] [--max-pixels N] [--max-queue N]
//              [--threads N] [--no-spin] [--log-format text|json] [--model-name NAME]
#include <CLI/CLI.hpp>

#include <memory>

#include "q3vl/server.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

RunFunction setup_serve(CLI::App& command) {
  auto o = std::make_shared<server::ServerOptions>();
  auto no_spin = std::make_shared<bool>(false);
  command.add_option("--model", o->model, "q3vl package directory (from `q3vl build`)")->required();
  command.add_option("--model-name", o->model_name, "Model id in /v1/models and requests (default: the package folder name)");
  command.add_option("--host", o->host, "Address to listen on")->capture_default_str();
  command.add_option("--port", o->port, "TCP port (0: any free port)")->capture_default_str();
  command.add_option("--parallel", o->parallel, "Slots: requests decoded together")->capture_default_str();
  command.add_option("--ctx-per-slot", o->ctx_per_slot, "KV cache tokens per slot (prompt + reply)")->capture_default_str();
  command.add_option("--max-queue", o->max_queue, "Requests waiting for a slot before 429")->capture_default_str();
  command.add_option("--prefill-chunk", o->prefill_chunk,
                     "Prompt tokens prefilled per step; bounds the stall of other streams")
      ->capture_default_str();
  command.add_option("--api-key", o->api_key, "Require `Authorization: Bearer KEY` on /v1/* and /metrics");
  command.add_option("--allowed-media-path", o->allowed_media_paths,
                     "Directory local media (paths, file:// URLs) may come from (repeatable)");
  command.add_flag("--allow-remote-media", o->allow_remote_media, "Fetch http(s) image URLs");
  command.add_option("--max-remote-media-bytes", o->max_remote_media_bytes, "Largest fetched media file")
      ->capture_default_str();
  command.add_option("--remote-media-timeout-ms", o->remote_media_timeout_ms, "Time limit of one media fetch")
      ->capture_default_str();
  command.add_option("--max-body-bytes", o->max_body_bytes, "Largest request body")->capture_default_str();
  command.add_option("--max-images-per-request", o->max_images_per_request, "Images + videos in one request")
      ->capture_default_str();
  command.add_option("--max-pixels", o->max_pixels, "Largest decoded image / video frame (width x height)")
      ->capture_default_str();
  command.add_option("--threads", o->threads, "Threads per op (0 = all cores)")->capture_default_str();
  command.add_flag("--no-spin", *no_spin, "Idle ONNX Runtime threads sleep instead of spinning");
  auto lazy_vision = std::make_shared<bool>(false);
  command.add_flag("--lazy-vision", *lazy_vision,
                   "Create the vision session on the first image or video request, not at startup");
  command.add_option("--shutdown-grace-ms", o->shutdown_grace_ms, "In-flight requests may finish this long after SIGTERM")
      ->capture_default_str();
  auto log_format = std::make_shared<std::string>("text");
  command.add_option("--log-format", *log_format, "Request log lines: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return [o, no_spin, lazy_vision, log_format] {
    o->allow_spinning = !*no_spin;
    o->preload_vision = !*lazy_vision;
    o->log_format = *log_format == "json" ? server::LogFormat::json : server::LogFormat::text;
    return server::serve(*o);
  };
}

}  // namespace

Q3VL_REGISTER_SUBCOMMAND("serve", "OpenAI-compatible HTTP server with a web chat page", setup_serve);

}  // namespace q3vl::tools
