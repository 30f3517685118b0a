// POST /v1/chat/completions: validate, submit to the scheduler, answer with one
// `chat.completion` JSON or an SSE stream of `chat.completion.chunk`s.
#pragma once

#include <memory>
#include <string>

#include "q3vl/model.h"
#include "q3vl/scheduler.h"
#include "q3vl/server.h"
#include "server/media_policy.h"
#include "server/metrics.h"
#include "server/request_log.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace q3vl::server {

// Everything that exists once the model has loaded. Owned by serve(); outlives every
// request thread (serve() stops the HTTP server, joining them, before destroying it).
struct LoadedModel {
  std::shared_ptr<const Model> model;
  std::unique_ptr<Scheduler> scheduler;
  bool starts_in_reasoning = false;  // the generation prompt opens a <think> block
};

struct ChatContext {
  const ServerOptions* options = nullptr;
  std::string model_name;
  LoadedModel* loaded = nullptr;
  const MediaPolicy* media = nullptr;
  Metrics* metrics = nullptr;
};

// Fills `res` (status 200). Throws ApiError for anything the client did wrong or the
// server cannot do, before the first byte of a stream; errors later in a stream are
// sent as an SSE `{"error": ...}` event before `data: [DONE]`. `record` receives what
// the request's log line reports (written later, when the response is complete).
void handle_chat_completion(const ChatContext& context, const httplib::Request& req, httplib::Response& res,
                            const std::shared_ptr<RequestRecord>& record);

}  // namespace q3vl::server
