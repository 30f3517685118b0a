// The hand-over between the scheduler thread (which calls a request's callbacks) and
// the HTTP thread that answers the client: token events are queued here, and the HTTP
// thread waits for them. One per request; shared by both sides through a shared_ptr.
// Thread-safety: every member function locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "q3vl/error.h"
#include "q3vl/generate.h"
#include "q3vl/scheduler.h"

namespace q3vl::server {

struct QueuedToken {
  std::int64_t token_id = 0;
  std::string piece;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;
  std::chrono::steady_clock::time_point at;
};

class RequestStream {
 public:
  // Callbacks for Scheduler::submit that fill this stream. on_token answers false
  // once cancel() was called (the client is gone).
  static RequestCallbacks callbacks(const std::shared_ptr<RequestStream>& stream);

  // Waits up to `timeout` for tokens or the end; moves queued tokens into `tokens`.
  // Returns true once the request has ended (result() or error() is set) and every
  // token was taken.
  bool wait(std::vector<QueuedToken>& tokens, std::chrono::milliseconds timeout);
  void cancel();
  bool cancelled() const;
  bool ended() const;  // on_done or on_error was called

  const std::optional<GenerateResult>& result() const { return result_; }  // after wait() returned true
  const std::optional<Error>& error() const { return error_; }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<QueuedToken> tokens_;
  bool ended_ = false;
  bool cancelled_ = false;
  std::optional<GenerateResult> result_;
  std::optional<Error> error_;
};

}  // namespace q3vl::server
