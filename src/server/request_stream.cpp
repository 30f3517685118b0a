#include "server/request_stream.h"

namespace q3vl::server {

RequestCallbacks RequestStream::callbacks(const std::shared_ptr<RequestStream>& stream) {
  RequestCallbacks callbacks;
  callbacks.on_token = [stream](const TokenEvent& event) {
    std::lock_guard lock(stream->mutex_);
    if (stream->cancelled_) return false;
    stream->tokens_.push_back(QueuedToken{event.token_id, std::string(event.piece), event.logprob, event.top,
                                          std::chrono::steady_clock::now()});
    stream->changed_.notify_all();
    return true;
  };
  callbacks.on_done = [stream](const GenerateResult& result) {
    std::lock_guard lock(stream->mutex_);
    stream->result_ = result;
    stream->ended_ = true;
    stream->changed_.notify_all();
  };
  callbacks.on_error = [stream](const Error& error) {
    std::lock_guard lock(stream->mutex_);
    stream->error_ = error;
    stream->ended_ = true;
    stream->changed_.notify_all();
  };
  return callbacks;
}

bool RequestStream::wait(std::vector<QueuedToken>& tokens, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return ended_ || !tokens_.empty(); });
  while (!tokens_.empty()) {
    tokens.push_back(std::move(tokens_.front()));
    tokens_.pop_front();
  }
  return ended_;
}

void RequestStream::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
}

bool RequestStream::ended() const {
  std::lock_guard lock(mutex_);
  return ended_;
}

bool RequestStream::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

}  // namespace q3vl::server
