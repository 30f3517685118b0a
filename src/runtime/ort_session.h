// OrtSession: one ONNX Runtime session over one graph file, plus IO introspection.
//
// Creation errors (missing file, invalid graph, unknown op) become q3vl::Error(runtime)
// naming the graph and the file, so "which graph failed" is always in the message.
// The session is immutable after creation; ONNX Runtime allows concurrent Run() calls
// on one session, so an OrtSession may be shared read-only between threads.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/ort_env.h"

namespace q3vl::runtime {

// One graph input or output as the session reports it.
struct TensorInfo {
  std::string name;
  ONNXTensorElementDataType element_type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  // -1 where the dimension is symbolic; `symbolic_dims[i]` then holds its name.
  std::vector<std::int64_t> shape;
  std::vector<std::string> symbolic_dims;
};

// "float32", "float16", "int64", "int32", "uint8", "bool", ... ("unknown" otherwise).
const char* element_type_name(ONNXTensorElementDataType type);
// "[batch_size, sequence_length, 2048]"
std::string format_shape(const TensorInfo& info);

class OrtSession {
 public:
  // Loads `path` (external data is resolved relative to it). `name` ("decoder") is used in
  // error messages. Throws q3vl::Error(runtime) on failure, io if the file does not exist.
  OrtSession(std::string name, const std::filesystem::path& path, const SessionConfig& config = {});
  OrtSession(OrtSession&&) noexcept = default;
  OrtSession& operator=(OrtSession&&) noexcept = default;
  OrtSession(const OrtSession&) = delete;
  OrtSession& operator=(const OrtSession&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }
  // The underlying session; valid as long as this object lives.
  Ort::Session& session() { return session_; }

  // Runs with inputs given by name; returns the requested outputs in order. ORT
  // failures become q3vl::Error(runtime) naming the graph.
  std::vector<Ort::Value> run(const std::vector<const char*>& input_names,
                              const std::vector<Ort::Value>& input_values,
                              const std::vector<const char*>& output_names);

 private:
  std::string name_;
  Ort::Session session_{nullptr};
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
};

}  // namespace q3vl::runtime
