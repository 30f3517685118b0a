#include "builder/vision_weights.h"

#include <string>

#include "io/dtype.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr const char* kGraphPrefix = "model.visual.";

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace

VisionWeights::VisionWeights(Graph& graph, const io::Checkpoint& checkpoint,
                             VisionPrecision precision)
    : graph_(graph), checkpoint_(checkpoint), precision_(precision) {
  for (const char* prefix : {"model.visual.", "visual."}) {
    if (checkpoint.contains(std::string(prefix) + "patch_embed.proj.weight")) {
      prefix_ = prefix;
      return;
    }
  }
  throw_error(ErrorKind::shape, checkpoint.dir().string(), "model.visual.patch_embed.proj.weight",
              "a Qwen3-VL vision tower (model.visual.* tensors)", "no such tensor");
}

std::vector<float> VisionWeights::read(const std::string& name,
                                       const std::vector<std::int64_t>& shape) const {
  const std::string key = prefix_ + name;
  if (!checkpoint_.contains(key)) {
    throw_error(ErrorKind::shape, checkpoint_.dir().string(), key, "tensor " + shape_text(shape),
                "missing");
  }
  const io::TensorView view = checkpoint_.tensor(key);
  if (view.shape != shape) {
    throw_error(ErrorKind::shape, view.file.string(), key, shape_text(shape), shape_text(view.shape));
  }
  return view.to_f32();
}

Value VisionWeights::matrix(const std::string& name, const std::vector<std::int64_t>& shape,
                            std::int64_t rows, std::int64_t cols) {
  const std::vector<float> values = read(name, shape);
  const std::string graph_name = kGraphPrefix + name;
  if (precision_ == VisionPrecision::fp32) {
    return graph_.initializer_f32(graph_name, {rows, cols}, values);
  }
  std::vector<std::uint16_t> half(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) half[i] = io::f32_to_f16(values[i]);
  const Value stored = graph_.initializer_f16(graph_name, {rows, cols}, half);
  return graph_.op("Cast", {stored}, {{"to", 1}});  // 1 = FLOAT
}

Value VisionWeights::vector(const std::string& name, const std::vector<std::int64_t>& shape) {
  return graph_.initializer_f32(kGraphPrefix + name, shape, read(name, shape));
}

}  // namespace q3vl::builder
