// The process-wide ONNX Runtime environment and session options.
//
// ONNX Runtime wants exactly one OrtEnv per process (it owns the logging and the
// global thread pools); ort_env() creates it on first use and keeps it until exit.
// Everything that makes an Ort::Session in q3vl takes its env from here.
//
// Thread-safety: ort_env() is safe to call from any thread (static local init).
#pragma once

#include <onnxruntime_cxx_api.h>

#include <string>

namespace q3vl::runtime {

// The one Ort::Env (log level warning, log id "q3vl"). Never null; lives until exit.
// Throws q3vl::Error(runtime) if ONNX Runtime cannot be initialised (library/header mismatch).
Ort::Env& ort_env();

// How a session runs. Zero thread counts mean "let ONNX Runtime decide".
struct SessionConfig {
  int intra_op_threads = 0;  // threads inside one op (MatMul, attention)
  int inter_op_threads = 1;  // parallel independent nodes; 1 = sequential execution
  // Idle intra-op worker threads busy-wait for the next op instead of sleeping
  // (ONNX Runtime's default). See ModelOptions::allow_spinning for the trade-off.
  bool allow_spinning = true;
  // ORT_ENABLE_ALL fuses and constant-folds; tests of exact numerics may use basic.
  GraphOptimizationLevel optimization_level = GraphOptimizationLevel::ORT_ENABLE_ALL;
  // Non-empty: ONNX Runtime's profiler records every node of every Run() and writes
  // "<profile_prefix>_<timestamp>.json" (Chrome trace format) when the session is destroyed.
  // For measurement only: each node costs a few microseconds more.
  std::string profile_prefix;
};

// Ort::SessionOptions for `config`. Throws q3vl::Error(runtime) on an ORT failure.
Ort::SessionOptions make_session_options(const SessionConfig& config);

}  // namespace q3vl::runtime
