#include "runtime/ort_session.h"

#include "q3vl/error.h"

namespace q3vl::runtime {
namespace {

TensorInfo describe(const std::string& name, const Ort::TypeInfo& type) {
  TensorInfo info;
  info.name = name;
  if (type.GetONNXType() != ONNX_TYPE_TENSOR) return info;
  auto tensor = type.GetTensorTypeAndShapeInfo();
  info.element_type = tensor.GetElementType();
  info.shape = tensor.GetShape();
  info.symbolic_dims.resize(info.shape.size());
  std::vector<const char*> symbolic(info.shape.size(), nullptr);
  tensor.GetSymbolicDimensions(symbolic.data(), symbolic.size());
  for (std::size_t i = 0; i < symbolic.size(); ++i) {
    if (symbolic[i] != nullptr) info.symbolic_dims[i] = symbolic[i];
  }
  return info;
}

}  // namespace

const char* element_type_name(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
    default: return "unknown";
  }
}

std::string format_shape(const TensorInfo& info) {
  std::string text = "[";
  for (std::size_t i = 0; i < info.shape.size(); ++i) {
    if (i) text += ", ";
    if (info.shape[i] >= 0) text += std::to_string(info.shape[i]);
    else if (!info.symbolic_dims[i].empty()) text += info.symbolic_dims[i];
    else text += "?";
  }
  return text + "]";
}

OrtSession::OrtSession(std::string name, const std::filesystem::path& path, const SessionConfig& config)
    : name_(std::move(name)) {
  if (!std::filesystem::exists(path)) {
    throw_error(ErrorKind::io, path.string(), name_ + " graph", "an existing .onnx file", "no such file");
  }
  try {
    auto options = make_session_options(config);
    session_ = Ort::Session(ort_env(), path.c_str(), options);
    Ort::AllocatorWithDefaultOptions allocator;
    for (std::size_t i = 0; i < session_.GetInputCount(); ++i) {
      inputs_.push_back(describe(session_.GetInputNameAllocated(i, allocator).get(),
                                 session_.GetInputTypeInfo(i)));
    }
    for (std::size_t i = 0; i < session_.GetOutputCount(); ++i) {
      outputs_.push_back(describe(session_.GetOutputNameAllocated(i, allocator).get(),
                                  session_.GetOutputTypeInfo(i)));
    }
  } catch (const Ort::Exception& e) {
    throw_error(ErrorKind::runtime, path.string(), name_ + " graph: cannot create session: " + e.what());
  }
}

std::vector<Ort::Value> OrtSession::run(const std::vector<const char*>& input_names,
                                        const std::vector<Ort::Value>& input_values,
                                        const std::vector<const char*>& output_names) {
  try {
    return session_.Run(Ort::RunOptions{nullptr}, input_names.data(), input_values.data(),
                        input_values.size(), output_names.data(), output_names.size());
  } catch (const Ort::Exception& e) {
    throw_error(ErrorKind::runtime, name_, std::string("run failed: ") + e.what());
  }
}

}  // namespace q3vl::runtime
