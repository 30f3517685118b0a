#include "runtime/lazy_session.h"

namespace q3vl::runtime {

OrtSession& LazySession::get() {
  if (created_.load(std::memory_order_acquire)) return *session_;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!session_) {
    session_.emplace(open_());
    created_.store(true, std::memory_order_release);
  }
  return *session_;
}

}  // namespace q3vl::runtime
