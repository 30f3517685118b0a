// LazySession: an OrtSession created on first use.
//
// Why: the vision tower is the biggest part of a package that a text-only run never
// touches. ONNX Runtime materialises a session's weights when the session is created
// (int8 MatMul prepacking, constant folding), so the 4B tower cost ~0.6-1.6 GB of
// resident memory in runs that sent no image. Model::load checks the graph's files
// (and their sizes against the manifest) up front either way; only the session waits
// for the first request with an image or video, unless ModelOptions::preload_vision.
//
// Thread-safety: get() may be called from any number of threads; the first caller
// creates the session while the others wait. A failed creation throws to that caller
// and leaves the session absent, so a later call tries again.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>

#include "runtime/ort_session.h"

namespace q3vl::runtime {

class LazySession {
 public:
  using Opener = std::function<OrtSession()>;

  LazySession() = default;  // no graph: present() is false
  explicit LazySession(Opener open) : open_(std::move(open)) {}

  // Whether the package has this graph (creating it may still fail).
  bool present() const { return static_cast<bool>(open_); }
  // Whether the session exists now (a run that never needed it leaves it uncreated).
  bool created() const { return created_.load(std::memory_order_acquire); }
  // The session, created on the first call. Precondition: present(). Throws what the
  // opener throws (q3vl::Error naming the graph).
  OrtSession& get();

 private:
  Opener open_;
  std::mutex mutex_;
  std::optional<OrtSession> session_;
  std::atomic<bool> created_{false};
};

}  // namespace q3vl::runtime
