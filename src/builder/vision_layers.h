// Block writers of the vision encoder (HF Qwen3VLVisionModel's module tree), one
// function per module. Each takes its input Value and returns its output Value and
// names its nodes and weights by the module's HF path relative to the tower
// ("blocks.3.attn" -> nodes "model.visual.blocks.3.attn/...", weights
// "model.visual.blocks.3.attn.qkv.weight").
//
// Layout: hidden states are 2-D [N, C] with N = S * L (all segments' patches, each
// segment's rows contiguous in merge-block order); only attention reshapes to
// [S, L, C] so that it runs per segment. Linear layers: see write_linear.
#pragma once

#include <cstdint>
#include <string>

#include "builder/graph.h"
#include "builder/vision_weights.h"
#include "q3vl/config.h"

namespace q3vl::builder {

// Values built once per graph and shared by every block. Non-owning: the Graph and
// VisionWeights outlive the context (all live inside one write_vision_graph call).
struct VisionContext {
  Graph& graph;
  VisionWeights& weights;
  const VisionConfig& config;
  bool q3vl_ops;           // VisionGraphOptions::q3vl_ops
  Value shape_slc;         // int64 [3]: {S, L, C}
  Value shape_sl3c;        // int64 [3]: {S, L, 3C}
  Value rotary_cos;        // f32 [L, head_dim / 2]: the first half of the host table's rows
  Value rotary_sin;        //   (the second half repeats it, vision/grid_tables.h)
  Value rotary_positions;  // int64 [1] = {0}: row l of a segment uses table row l
};

// y = LayerNorm(x) * weight + bias over the last axis (width), eps 1e-6 (HF nn.LayerNorm(eps=1e-6)).
Value write_layer_norm(VisionContext& ctx, const std::string& path, Value x, std::int64_t width);

// How an int8 linear quantizes its activations, chosen by what feeds it (ORT's CPU
// int8 kernels use VNNI; the weights are int8 in every form).
enum class Int8Activations {
  // Per row, symmetric: rows are divided by max|row| / 127, DynamicQuantizeMatMul runs
  // on the result (its single uint8 range then fits every row), and the output rows are
  // scaled back. For inputs centred on zero (LayerNorm outputs, attention outputs).
  per_row,
  // One asymmetric uint8 range for the whole tensor (DynamicQuantizeMatMul alone). For
  // GELU outputs: skewed (>= -0.17), where a symmetric range would waste half the codes.
  per_tensor,
  // Not quantized: float weights and activations even at int8 or q8.
  none,
  // Not int8: at int8 and q8, weights and activations rounded to bf16 with float sums
  // (q3vl.Bf16Linear, kernels/bf16_linear.h) when the graph may use q3vl's ops, float as
  // `none` otherwise. For linears whose error int8 cannot carry (the attention's qkv).
  bf16,
};

// y = x W^T + b; x: [N, in], W: [out, in] (HF nn.Linear). Float precisions: Gemm with
// the checkpoint's weight. int8: `activations` chooses the form (see above). q8:
// q3vl.QuantLinear (per-32 int8 activations whatever feeds the linear) unless
// `activations` is none or bf16, which take the form they take at int8.
Value write_linear(VisionContext& ctx, const std::string& path, Value x, std::int64_t in,
                   std::int64_t out, Int8Activations activations);

// x: [N, C] -> [N, C]. qkv -> 2-D rotary on q and k (fp32) -> per-segment softmax(q k^T / sqrt(d)) v
// (batch = segment: com.microsoft.MultiHeadAttention, or q3vl.Bf16Attention at int8 and q8
// with q3vl's ops) -> proj.
Value write_vision_attention(VisionContext& ctx, const std::string& path, Value x);

// x: [N, C] -> linear_fc2(act(linear_fc1(x))), act = config.hidden_act (tanh-GELU for Qwen3-VL).
Value write_vision_mlp(VisionContext& ctx, const std::string& path, Value x);

// x = x + attn(norm1(x)); x = x + mlp(norm2(x)).  x: [N, C]
Value write_vision_block(VisionContext& ctx, std::int64_t index, Value x);

// Qwen3VLVisionPatchMerger: x [N, C] -> [N / m^2, out_hidden_size].
// postshuffle_norm = false (the final `merger`): LayerNorm over C, then group m^2 rows;
// true (the `deepstack_merger_list` entries): group first, LayerNorm over m^2 * C.
// Then linear_fc1 -> exact (erf) GELU -> linear_fc2.
Value write_patch_merger(VisionContext& ctx, const std::string& path, Value x, bool postshuffle_norm);

}  // namespace q3vl::builder
