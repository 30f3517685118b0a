#include "builder/vision_weights.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "builder/weight_reader.h"
#include "io/dtype.h"
#include "kernels/bf16_linear.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr const char* kGraphPrefix = "model.visual.";

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
  std::vector<float> values = view.to_f32();
  release_checkpoint_pages(view.data);  // the vision tower's bf16 pages would otherwise stay resident
  return values;
}

Value VisionWeights::matrix(const std::string& name, const std::vector<std::int64_t>& shape,
                            std::int64_t rows, std::int64_t cols) {
  const std::vector<float> values = read(name, shape);
  const std::string graph_name = kGraphPrefix + name;
  if (precision_ != VisionPrecision::fp16) {
    return graph_.initializer_f32(graph_name, {rows, cols}, values);
  }
  std::vector<std::uint16_t> half(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) half[i] = io::f32_to_f16(values[i]);
  const Value stored = graph_.initializer_f16(graph_name, {rows, cols}, half);
  return graph_.op("Cast", {stored}, {{"to", 1}});  // 1 = FLOAT
}

VisionWeights::Quantized VisionWeights::quantized_matrix(const std::string& name, std::int64_t rows,
                                                         std::int64_t cols) {
  const std::vector<float> values = read(name, {rows, cols});
  std::vector<std::int8_t> quantized(values.size());
  std::vector<float> scales(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = values.data() + r * cols;
    float top = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c) top = std::max(top, std::fabs(row[c]));
    const float scale = top > 0.0f ? top / 127.0f : 1.0f;
    scales[static_cast<std::size_t>(r)] = scale;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float q = std::clamp(std::nearbyint(row[c] / scale), -127.0f, 127.0f);
      quantized[static_cast<std::size_t>(c * rows + r)] = static_cast<std::int8_t>(q);
    }
  }
  const std::string graph_name = kGraphPrefix + name;
  Quantized out;
  out.weight = graph_.initializer(graph_name + ".int8", DType::i8, {cols, rows},
                                  std::as_bytes(std::span<const std::int8_t>(quantized)));
  out.scale = graph_.initializer_f32(graph_name + ".scale", {rows}, scales);
  return out;
}

Value VisionWeights::bf16_matrix(const std::string& name, std::int64_t rows, std::int64_t cols) {
  const kernels::Bf16LinearShape shape{rows, cols};
  const std::vector<float> values = read(name, {rows, cols});
  std::vector<std::uint16_t> packed(static_cast<std::size_t>(shape.weight_count()));
  kernels::pack_bf16(shape, values.data(), packed.data());
  return graph_.initializer(kGraphPrefix + name + ".bf16", DType::bf16,
                            {shape.n_tiles(), shape.k_pairs(), kernels::kTileRows, 2},
                            std::as_bytes(std::span<const std::uint16_t>(packed)));
}

Value VisionWeights::vector(const std::string& name, const std::vector<std::int64_t>& shape) {
  return graph_.initializer_f32(kGraphPrefix + name, shape, read(name, shape));
}

}  // namespace q3vl::builder
