#include "runtime/ort_env.h"

#include "kernels/ort_domain.h"
#include "q3vl/error.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define Q3VL_TSAN_BUILD 1
#endif
#endif

namespace q3vl::runtime {

Ort::Env& ort_env() {
  // A function-local static: created on first use, destroyed after main returns, so
  // every session (owned by objects that die before exit) is released before the env.
  static Ort::Env env = [] {
    try {
      return Ort::Env(ORT_LOGGING_LEVEL_WARNING, "q3vl");
    } catch (const Ort::Exception& e) {
      throw_error(ErrorKind::runtime, "onnxruntime",
                  std::string("cannot create the environment: ") + e.what());
    }
  }();
  return env;
}

Ort::SessionOptions make_session_options(const SessionConfig& config) {
  try {
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(config.intra_op_threads);
    options.SetInterOpNumThreads(config.inter_op_threads);
    options.SetExecutionMode(config.inter_op_threads > 1 ? ExecutionMode::ORT_PARALLEL
                                                         : ExecutionMode::ORT_SEQUENTIAL);
    options.SetGraphOptimizationLevel(config.optimization_level);
    // q3vl packages may use the q3vl op domain (q3vl.QuantLinear): every session gets it.
    kernels::add_q3vl_ops(options);
    if (!config.profile_prefix.empty()) options.EnableProfiling(config.profile_prefix.c_str());
#ifdef Q3VL_TSAN_BUILD
    // ThreadSanitizer builds only: ONNX Runtime's CPU arena hands freed buffers to the next
    // run through its own locks (nsync), which TSan cannot see, so a q3vl kernel writing a
    // recycled buffer on one thread and another thread's earlier use of it would be
    // reported as a race although ORT orders them. Without the arena (and the memory
    // pattern built on it) every tensor is a fresh malloc that TSan tracks, and the races
    // it reports are q3vl's.
    options.DisableCpuMemArena();
    options.DisableMemPattern();
#endif
    if (!config.allow_spinning) {
      options.AddConfigEntry("session.intra_op.allow_spinning", "0");
      options.AddConfigEntry("session.inter_op.allow_spinning", "0");
    }
    return options;
  } catch (const Ort::Exception& e) {
    throw_error(ErrorKind::runtime, "onnxruntime", std::string("session options: ") + e.what());
  }
}

}  // namespace q3vl::runtime
