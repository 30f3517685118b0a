#include "server/chat_completion.h"

#include <chrono>
#include <cstdio>
#include <random>

#include <httplib.h>

#include "server/api_error.h"
#include "server/chat_request.h"
#include "server/chat_response.h"
#include "server/client_connection.h"
#include "server/request_stream.h"

namespace q3vl::server {
namespace {

using Clock = std::chrono::steady_clock;

std::string completion_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "chatcmpl-%016llx%08llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random() & 0xffffffffu));
  return buffer;
}

double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

std::vector<std::uint8_t> byte_list(std::string_view bytes) { return {bytes.begin(), bytes.end()}; }

LogprobEntry logprobs_of(const Model& model, const QueuedToken& token) {
  const std::string_view bytes = model.token_bytes(token.token_id);
  LogprobEntry out{utf8_lossy(bytes), byte_list(bytes), token.logprob, {}};
  for (const TokenLogprob& alt : token.top) {
    const std::string_view alt_bytes = model.token_bytes(alt.token_id);
    out.top.push_back({utf8_lossy(alt_bytes), byte_list(alt_bytes), alt.logprob});
  }
  return out;
}

// Records token timing in the metrics as tokens arrive (both response modes).
struct TokenClock {
  Clock::time_point received;
  std::optional<Clock::time_point> last;

  void observe(Metrics& metrics, const QueuedToken& token, RequestRecord& record) {
    if (!last) {
      metrics.observe_ttft(seconds(received, token.at));
      record.ttft_ms = seconds(received, token.at) * 1000.0;
    } else {
      metrics.observe_token_latency(seconds(*last, token.at));
    }
    last = token.at;
  }
};

void record_result(RequestRecord& record, const GenerateResult& result, const char* finish) {
  record.prompt_tokens = result.usage.prompt_tokens;
  record.completion_tokens = result.usage.completion_tokens;
  record.cached_tokens = result.usage.cached_tokens;
  record.finish_reason = finish;
}

// The SSE side of one request: runs on the HTTP connection's thread, called by
// cpp-httplib until it calls sink.done() or returns false (client gone).
class StreamWriter {
 public:
  // Called by cpp-httplib when the response ends, however it ended: a request still
  // running (the client left before its first token) is cancelled.
  void release(bool success) {
    if (!stream_->ended()) {
      stream_->cancel();
      context_.loaded->scheduler->cancel(id_);
      if (!success) record_->client_gone = true;
    }
  }

  StreamWriter(ChatContext context, ChatCompletionRequest request, CompletionHeader header,
               std::shared_ptr<RequestStream> stream, Scheduler::RequestId id, TokenClock clock,
               std::shared_ptr<RequestRecord> record)
      : context_(std::move(context)), request_(std::move(request)), header_(std::move(header)),
        stream_(std::move(stream)), id_(id), clock_(clock), record_(std::move(record)),
        parser_(context_.loaded->starts_in_reasoning, request_.parse_tool_calls) {}

  bool step(httplib::DataSink& sink) {
    // cpp-httplib does not catch exceptions from a content provider: none may leave.
    try {
      return step_or_throw(sink);
    } catch (const std::exception& e) {
      stream_->cancel();
      context_.loaded->scheduler->cancel(id_);
      const ApiError api(500, "server_error", std::string("internal error: ") + e.what());
      record_->error = api.what();
      write_raw(sink, "data: " + error_body(api) + "\n\n");
      write_raw(sink, kSseDone);
      sink.done();
      return true;
    }
  }

 private:
  bool step_or_throw(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      if (!write(sink, chunk({{"role", "assistant"}, {"content", ""}}, nullptr))) return gone();
    }
    std::vector<QueuedToken> tokens;
    const bool ended = stream_->wait(tokens, std::chrono::milliseconds(1000));
    if (tokens.empty() && !ended) {
      // Nothing to send for a second (a long prefill): an SSE comment finds out
      // whether the client is still there.
      return write_raw(sink, ": keep-alive\n\n") ? true : gone();
    }
    for (const QueuedToken& token : tokens) {
      clock_.observe(*context_.metrics, token, *record_);
      if (request_.logprobs) pending_logprobs_.push_back(logprobs_of(*context_.loaded->model, token));
      if (!send(sink, parser_.feed(token.piece))) return gone();
    }
    if (!ended) return true;
    return finish(sink);
  }

  Json chunk(Json delta, const char* finish) {
    std::optional<std::vector<LogprobEntry>> logprobs;
    if (request_.logprobs && !pending_logprobs_.empty()) {
      logprobs = std::move(pending_logprobs_);
      pending_logprobs_.clear();
    }
    return chunk_json(header_, std::move(delta), logprobs, finish, request_.include_usage);
  }

  bool send(httplib::DataSink& sink, const OutputDelta& delta) {
    if (delta.empty()) return true;  // held back (a possible tag); its logprobs wait too
    return write(sink, chunk(delta_json(header_, delta), nullptr));
  }

  bool finish(httplib::DataSink& sink) {
    if (const auto& error = stream_->error()) {
      const ApiError api = from_error(*error);
      record_->error = api.what();
      write_raw(sink, "data: " + error_body(api) + "\n\n");
      write_raw(sink, kSseDone);
      sink.done();
      return true;
    }
    const GenerateResult& result = *stream_->result();
    if (!send(sink, parser_.finish())) return gone();
    const char* reason = finish_reason_name(result.finish_reason, parser_.tool_calls() > 0);
    record_result(*record_, result, reason);
    if (!write(sink, chunk(Json::object(), reason))) return gone();
    if (request_.include_usage && !write(sink, usage_chunk_json(header_, result.usage))) return gone();
    if (!write_raw(sink, kSseDone)) return gone();
    sink.done();
    return true;
  }

  bool write(httplib::DataSink& sink, const Json& data) { return write_raw(sink, sse_event(data)); }
  static bool write_raw(httplib::DataSink& sink, const std::string& text) { return sink.write(text.data(), text.size()); }

  bool gone() {
    stream_->cancel();
    context_.loaded->scheduler->cancel(id_);
    context_.metrics->count_disconnect();
    record_->client_gone = true;
    return false;
  }

  ChatContext context_;
  ChatCompletionRequest request_;
  CompletionHeader header_;
  std::shared_ptr<RequestStream> stream_;
  Scheduler::RequestId id_;
  TokenClock clock_;
  std::shared_ptr<RequestRecord> record_;
  OutputParser parser_;
  std::vector<LogprobEntry> pending_logprobs_;
  bool started_ = false;
};

}  // namespace

void handle_chat_completion(const ChatContext& context, const httplib::Request& req, httplib::Response& res,
                            const std::shared_ptr<RequestRecord>& record) {
  const TokenClock clock{Clock::now(), std::nullopt};
  LoadedModel& loaded = *context.loaded;
  ChatCompletionRequest request =
      parse_chat_request(req.body, loaded.model->default_options(), context.options->ctx_per_slot);
  record->stream = request.stream;
  if (!request.model.empty() && request.model != context.model_name) {
    throw ApiError(404, "invalid_request_error",
                   "model: \"" + request.model + "\" does not exist (this server serves \"" + context.model_name + "\")",
                   "model", "model_not_found");
  }
  if (!request.options.tool_call_names.empty() && loaded.starts_in_reasoning) {
    // The forced call would start inside the open <think> block the prompt ends with.
    throw ApiError(400, "invalid_request_error",
                   "tool_choice: forcing a tool call is not supported on a Thinking checkpoint (use \"auto\")",
                   "tool_choice", "unsupported");
  }
  const MediaFiles media_files = context.media->apply(request.messages);  // until submit() returned
  context.media->limit(request.options);

  CompletionHeader header{completion_id(),
                          std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count(),
                          context.model_name};
  record->id = header.id;
  auto stream = std::make_shared<RequestStream>();
  Scheduler::RequestId id = 0;
  try {
    id = loaded.scheduler->submit(request.messages, request.options, RequestStream::callbacks(stream));
  } catch (const Error& e) {
    throw context.media->error_of(e, request.messages);
  }

  if (request.stream) {
    auto writer = std::make_shared<StreamWriter>(context, std::move(request), header, stream, id, clock, record);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [writer](std::size_t, httplib::DataSink& sink) { return writer->step(sink); },
        [writer](bool success) { writer->release(success); });
    return;
  }

  // The client is checked after every token and every 50 ms between (prefill): one
  // that left stops its generation within a step, as a stream's does.
  const ClientConnection client(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  std::vector<QueuedToken> tokens;
  TokenClock timing = clock;
  std::size_t timed = 0;
  for (bool ended = false; !ended;) {
    ended = stream->wait(tokens, std::chrono::milliseconds(50));
    for (; timed < tokens.size(); ++timed) timing.observe(*context.metrics, tokens[timed], *record);
    if (!ended && !stream->cancelled() && client.peer_closed()) {
      stream->cancel();
      loaded.scheduler->cancel(id);
      context.metrics->count_disconnect();
      record->client_gone = true;  // the reply below goes nowhere; the log line says why
    }
  }
  if (const auto& error = stream->error()) throw from_error(*error);
  const GenerateResult& result = *stream->result();
  const ParsedOutput reply = parse_output(result.text, loaded.starts_in_reasoning, request.parse_tool_calls);
  std::optional<std::vector<LogprobEntry>> logprobs;
  if (request.logprobs) {
    logprobs.emplace();
    for (const QueuedToken& token : tokens) logprobs->push_back(logprobs_of(*loaded.model, token));
  }
  const Json body = completion_json(header, reply, result, logprobs);
  record_result(*record, result, body["choices"][0]["finish_reason"].get<std::string>().c_str());
  res.set_content(json_text(body), "application/json");
}

}  // namespace q3vl::server
