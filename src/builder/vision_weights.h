// VisionWeights: reads the HF vision tower's tensors from a checkpoint and adds
// them to a vision graph as initializers, in the precision the graph is built at.
//
// Names: `name` arguments are HF paths relative to the tower ("blocks.3.attn.qkv.weight");
// the checkpoint key is "<prefix><name>" where the prefix is "model.visual." (HF 4.57+/5.x
// layout) or "visual." (older exports), found once at construction; the initializer is
// always named "model.visual.<name>" so graphs look the same whatever the source.
//
// Precision: matrix() stores large matrices as float32, or (fp16) float16 followed by a
// Cast to float32 (ORT folds the Cast into a float32 constant when the session loads, so
// the file is half the size and the math stays float32); at int8 it stays float32 (the
// patch embedding). quantized_matrix() is the DynamicQuantizeMatMul linears' form; read()
// gives the float values for the MatMulNBits form (builder/linear.h quantizes them). vector() (biases,
// norms, the position table) is always float32.
//
// Every read checks the tensor exists and has the expected shape; a failure throws
// q3vl::Error(shape) naming the checkpoint key, the expected and the actual shape.
// Not thread-safe; the Graph and Checkpoint outlive this object (all three live in one
// write_vision_graph call).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "builder/graph.h"
#include "builder/vision_graph.h"
#include "io/safetensors.h"

namespace q3vl::builder {

class VisionWeights {
 public:
  // Throws q3vl::Error(shape) if the checkpoint has no vision tower under either prefix.
  VisionWeights(Graph& graph, const io::Checkpoint& checkpoint, VisionPrecision precision);

  // The tensor's values as float32 after checking its shape (any float dtype on disk).
  std::vector<float> read(const std::string& name, const std::vector<std::int64_t>& shape) const;

  // A weight matrix [rows, cols] for a linear layer (precision-dependent storage).
  // `shape` is the checkpoint's shape; its numel must equal rows * cols (the patch
  // embedding's [C, 3, 2, 16, 16] convolution kernel is read as [C, 1536]).
  Value matrix(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t rows,
               std::int64_t cols);
  // int8 form of a linear's [rows = out, cols = in] weight for DynamicQuantizeMatMul:
  // `weight` int8 [in, out] (transposed: the op computes x @ B) and `scale` f32 [out], one
  // symmetric scale per output channel: scale = max|w_row| / 127, q = round_half_even(w / scale).
  // Initializers "<name>.int8" and "<name>.scale".
  struct Quantized {
    Value weight;
    Value scale;
  };
  Quantized quantized_matrix(const std::string& name, std::int64_t rows, std::int64_t cols);
  // A linear's [rows = out, cols = in] weight rounded to bf16 in q3vl.Bf16Linear's pair
  // layout (kernels/bf16_linear.h), initializer "<name>.bf16".
  Value bf16_matrix(const std::string& name, std::int64_t rows, std::int64_t cols);

  // A float32 tensor with the checkpoint's shape.
  Value vector(const std::string& name, const std::vector<std::int64_t>& shape);

  VisionPrecision precision() const { return precision_; }

 private:
  Graph& graph_;
  const io::Checkpoint& checkpoint_;
  VisionPrecision precision_;
  std::string prefix_;
};

}  // namespace q3vl::builder
