// serve(): the HTTP server's life cycle — listen, load in the background, route,
// shut down on SIGINT / SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "q3vl/chat_template.h"
#include "q3vl/error.h"
#include "q3vl/server.h"
#include "server/api_error.h"
#include "server/chat_completion.h"
#include "server/chat_page.h"
#include "server/request_log.h"
#include "server/server_limits.h"

namespace q3vl::server {
namespace {

using Clock = std::chrono::steady_clock;

// The log record and start time of the request this HTTP thread is serving: cpp-httplib
// handles one request per thread at a time, calling the pre-routing handler, the route
// and (once the response is written, streams included) the logger on that thread.
thread_local std::shared_ptr<RequestRecord> t_record;
thread_local std::chrono::steady_clock::time_point t_started;

// SIGINT / SIGTERM arrive on whichever thread the kernel picks (ONNX Runtime and the
// tokenizer start threads of their own), so the handler only writes the signal number
// to a pipe, the one async-signal-safe hand-over, and a plain thread reads it.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signal) {
  const char c = static_cast<char>(signal);
  [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &c, 1);
}

void install_signal_handlers() {
  if (g_signal_pipe[0] < 0 && ::pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    throw_error(ErrorKind::runtime, "", "signals", "a pipe for SIGINT / SIGTERM", std::strerror(errno));
  }
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A client that closes its socket must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
}

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status;
  res.set_content(error_body(error), "application/json");
}

bool starts_in_reasoning(const Model& model) {
  const text::ChatTemplate chat_template = text::ChatTemplate::load(model.dir());
  text::Message user;
  user.role = "user";
  user.content = std::string("x");
  const std::string prompt = chat_template.render({user});
  const std::size_t open = prompt.rfind("<think>");
  return open != std::string::npos && prompt.find("</think>", open) == std::string::npos;
}

class Server {
 public:
  explicit Server(const ServerOptions& options)
      : options_(options), model_name_(options.model_name.empty() ? options.model.filename().string() : options.model_name),
        media_(media_limits(options)) {
    if (model_name_.empty()) model_name_ = options.model.parent_path().filename().string();
  }

  int run() {
    configure();
    // Port 0 takes any free port; the line below tells which (tests read it).
    const int port = options_.port == 0 ? http_.bind_to_any_port(options_.host)
                                        : (http_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port <= 0) {
      throw_error(ErrorKind::io, options_.host + ":" + std::to_string(options_.port), "",
                  "a free address to listen on", "bind failed (in use or not allowed)");
    }
    write_log_message(options_.log_format, "listening on http://" + options_.host + ":" + std::to_string(port) +
                                               " (model \"" + model_name_ + "\" loading)");
    std::thread signals([this] { wait_for_signal(); });
    std::thread loader([this] { load(); });
    http_.listen_after_bind();
    // listen returns after stop(): every connection thread has finished.
    loader.join();
    // Wake the signal thread if no signal did (a model that failed to load).
    exiting_.store(true);
    const char wake = 0;
    [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &wake, 1);
    signals.join();
    loaded_.scheduler.reset();
    write_log_message(options_.log_format, "stopped");
    if (load_error_) throw *load_error_;
    return 0;
  }

 private:
  void load() {
    try {
      ModelOptions model_options;
      model_options.intra_op_threads = options_.threads;
      model_options.allow_spinning = options_.allow_spinning;
      model_options.preload_vision = options_.preload_vision;
      loaded_.model = Model::load(options_.model, model_options);
      loaded_.starts_in_reasoning = starts_in_reasoning(*loaded_.model);
      if (options_.ctx_per_slot > loaded_.model->context_length()) {
        throw_error(ErrorKind::usage, "", "--ctx-per-slot",
                    "at most the model's context length " + std::to_string(loaded_.model->context_length()),
                    std::to_string(options_.ctx_per_slot));
      }
      SchedulerOptions scheduler;
      scheduler.parallel = options_.parallel;
      scheduler.ctx_per_slot = options_.ctx_per_slot;
      scheduler.max_queue = options_.max_queue;
      scheduler.prefill_chunk_tokens = options_.prefill_chunk;
      loaded_.scheduler = std::make_unique<Scheduler>(loaded_.model, scheduler);
      const SchedulerStats stats = loaded_.scheduler->stats();
      write_log_message(options_.log_format,
                        "model loaded: " + options_.model.string() + "; KV cache " + std::to_string(stats.kv_bytes) +
                            " bytes (" + std::to_string(stats.kv_tokens_capacity) + " tokens = " +
                            std::to_string(options_.parallel) + " slots x " + std::to_string(options_.ctx_per_slot) +
                            ")" + (loaded_.starts_in_reasoning ? "; replies start in <think>" : ""));
      ready_.store(true);
    } catch (const Error& e) {
      fail_load(e);
    } catch (const std::exception& e) {
      fail_load(Error({ErrorKind::runtime, options_.model.string(), "", "", "", e.what()}));
    }
  }

  void fail_load(const Error& e) {
    write_log_message(options_.log_format, std::string("model failed to load: ") + e.what());
    load_error_ = e;
    stopping_.store(true);
    stop_http();
  }

  // cpp-httplib's stop() does nothing before listen has started, so a stop that comes
  // that early (a fast load failure, an early signal) waits for it first.
  void stop_http() {
    for (int i = 0; i < 5000 && !http_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    http_.stop();
  }

  void wait_for_signal() {
    char signal = 0;
    while (::read(g_signal_pipe[0], &signal, 1) < 0 && errno == EINTR) {
    }
    if (exiting_.load()) return;  // woken by run() itself
    stopping_.store(true);
    write_log_message(options_.log_format, std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") +
                                               ": finishing in-flight requests (grace " +
                                               std::to_string(options_.shutdown_grace_ms) + " ms)");
    // New requests now get 503; in-flight ones finish or are cancelled after the grace.
    // (While the model still loads there is nothing in flight; run() waits for the loader.)
    if (ready_.load()) loaded_.scheduler->shutdown(std::chrono::milliseconds(options_.shutdown_grace_ms));
    stop_http();
  }

  nlohmann::ordered_json model_json() const {
    return {{"id", model_name_}, {"object", "model"}, {"created", started_unix_}, {"owned_by", "q3vl"}};
  }

  ApiError unavailable() const {
    if (stopping_.load()) return ApiError(503, "unavailable", "the server is shutting down", {}, "shutting_down");
    return ApiError(503, "unavailable", "the model is loading; retry when GET /health answers 200", {}, "model_loading");
  }

  bool authorized(const httplib::Request& req) const {
    if (options_.api_key.empty()) return true;
    // Compared in constant time: the answer's timing tells nothing about the key.
    const std::string given = req.get_header_value("Authorization");
    const std::string expected = "Bearer " + options_.api_key;
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
    }
    return diff == 0;
  }

  // Wraps a handler: authentication, readiness, and every error as OpenAI JSON.
  httplib::Server::Handler api(bool needs_model, std::function<void(const httplib::Request&, httplib::Response&)> handler) {
    return [this, needs_model, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        if (!authorized(req)) {
          throw ApiError(401, "invalid_request_error", "missing or wrong API key (Authorization: Bearer ...)", {},
                         "invalid_api_key");
        }
        if (needs_model && (!ready_.load() || stopping_.load())) throw unavailable();
        handler(req, res);
      } catch (const ApiError& e) {
        t_record->error = e.what();
        send_error(res, e);
      } catch (const Error& e) {
        const ApiError api = from_error(e);
        t_record->error = api.what();
        send_error(res, api);
      } catch (const std::exception& e) {
        t_record->error = e.what();
        send_error(res, ApiError(500, "server_error", std::string("internal error: ") + e.what()));
      }
    };
  }

  void configure() {
    const int threads = options_.parallel + static_cast<int>(std::min<std::int64_t>(options_.max_queue, 64)) + 8;
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    http_.set_payload_max_length(static_cast<std::size_t>(options_.max_body_bytes));
    http_.set_keep_alive_timeout(2);
    http_.set_read_timeout(30, 0);

    http_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      t_record = std::make_shared<RequestRecord>();
      t_started = Clock::now();
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(chat_page_html(), "text/html; charset=utf-8");
    });
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const bool ready = ready_.load() && !stopping_.load();
      res.status = ready ? 200 : 503;
      res.set_content(ready ? R"({"status":"ok"})" : stopping_.load() ? R"({"status":"shutting_down"})"
                                                                       : R"({"status":"loading"})",
                      "application/json");
    });
    http_.Get("/metrics", api(false, [this](const httplib::Request&, httplib::Response& res) {
      std::optional<SchedulerStats> stats;
      if (ready_.load()) stats = loaded_.scheduler->stats();
      res.set_content(metrics_.render(stats ? &*stats : nullptr, ready_.load()), "text/plain; version=0.0.4");
    }));
    http_.Get("/v1/models", api(false, [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::ordered_json({{"object", "list"}, {"data", {model_json()}}}).dump(), "application/json");
    }));
    http_.Get(R"(/v1/models/(.+))", api(false, [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1];
      if (id != model_name_) {
        throw ApiError(404, "invalid_request_error", "model: \"" + id + "\" does not exist", "model", "model_not_found");
      }
      res.set_content(model_json().dump(), "application/json");
    }));
    http_.Post("/v1/chat/completions", api(true, [this](const httplib::Request& req, httplib::Response& res) {
      ChatContext context{&options_, model_name_, &loaded_, &media_, &metrics_};
      handle_chat_completion(context, req, res, t_record);
    }));
    // Unknown routes, and errors cpp-httplib answers itself (413 body too large, 400
    // unreadable request): an OpenAI error body unless a handler already wrote one.
    http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      if (!t_record) t_record = std::make_shared<RequestRecord>();
      if (res.status == 404) {
        send_error(res, ApiError(404, "invalid_request_error", "no route " + req.method + " " + req.path, {},
                                 "unknown_route"));
      } else if (res.status == 413) {
        send_error(res, ApiError(413, "invalid_request_error", "request body larger than --max-body-bytes", {},
                                 "request_too_large"));
      } else {
        send_error(res, ApiError(res.status, "invalid_request_error", "HTTP " + std::to_string(res.status)));
      }
    });
    http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const RequestRecord record = t_record ? *t_record : RequestRecord{};
      t_record.reset();
      if (req.path == "/v1/chat/completions") metrics_.count_response(res.status);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t_started).count();
      write_log_line(options_.log_format, req.method, req.path, res.status, ms, req.remote_addr, record);
    });
  }

  const ServerOptions& options_;
  std::string model_name_;
  MediaPolicy media_;
  Metrics metrics_;
  LoadedModel loaded_;
  httplib::Server http_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> exiting_{false};
  std::optional<Error> load_error_;
  std::int64_t started_unix_ = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
};

}  // namespace

int serve(const ServerOptions& options) {
  check_options(options);
  install_signal_handlers();
  Server server(options);  // checks the media directories
  print_limits(options);
  return server.run();
}

}  // namespace q3vl::server
