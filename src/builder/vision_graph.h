// The vision encoder graph (vision.onnx): HF Qwen3VLVisionModel written op by op
// from the checkpoint's `model.visual.*` weights.
//
// One call runs S equal-size attention segments (one image, or one temporal group
// of a video; several same-size images may share a call). Everything that depends
// on the grid is a graph input computed on the host by vision/grid_tables.h, so the
// graph has static structure and fully dynamic S and L:
//
//   inputs  pixel_values        f32   [S, L, P]   P = in_channels * temporal_patch_size * patch_size^2,
//                                                 rows of each segment in merge-block order
//           pos_embed_indices   i64   [L, 4]      bilinear taps into pos_embed (grid_tables)
//           pos_embed_weights   f32   [L, 4]
//           rotary_cos          f32   [L, head_dim]
//           rotary_sin          f32   [L, head_dim]
//   outputs merged_tokens       f32   [S, L/m^2, out_hidden_size]        (merger)
//           deepstack_features  f32   [K, S, L/m^2, out_hidden_size]     K = len(deepstack_visual_indexes)
//
// Attention is com.microsoft.MultiHeadAttention with batch = segment, so no
// attention crosses segments and no [L, L] (let alone [N, N]) mask exists. With
// no mask/bias/past inputs ORT's CPU kernel takes its tiled flash-attention path
// (MlasFlashAttention), whose scratch is per thread and independent of L.
//
// Node and initializer names are the HF module paths ("model.visual.blocks.3.attn.qkv").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "builder/graph.h"
#include "io/safetensors.h"
#include "io/vision_io.h"
#include "q3vl/config.h"

namespace q3vl::builder {

enum class VisionPrecision {
  fp32,  // weights and activations float32 (the parity reference)
  fp16,  // weights stored float16 (half the file), cast to float32 when the session
         // loads; activations stay float32 because ORT's CPU MatMul/MHA have no fp16 kernel on x86
  int8,  // attn.proj, mlp and merger linears int8 (ORT's VNNI DynamicQuantizeMatMul),
         // activations quantized per call: per row for LayerNorm/attention outputs, per
         // tensor for GELU outputs (vision_layers.h Int8Activations); attn.qkv (its error
         // passes through the softmax) and the attention's two products in bf16
         // (q3vl.Bf16Linear, q3vl.Bf16Attention; fp32 without q3vl_ops); norms, rotary, the
         // softmax and the patch embedding stay fp32
  q8,    // attn.proj, mlp and merger linears on q3vl.QuantLinear (kernels/quant_linear.h):
         // 8-bit weights per 32-value block with fp16 scales, activations int8 per 32-value
         // block (llama.cpp Q8_0's form on both sides), in the kernel's layout so nothing is
         // repacked at load. attn.qkv and the attention products are bf16 as at int8
         // (vision_layers.cpp says why); norms, rotary and the patch embedding stay fp32. Needs q3vl's runtime (the
         // "q3vl" op domain). Not the default: on the 4B tower it is the closest quantized form
         // (merged cosine 0.99984 vs int8's 0.99971) but costs 0.71-0.76x fp32's CPU time where
         // int8 costs 0.51-0.64x on an AMX machine (bench/kernels/results/2026-12-06-vision.md).
};

// "fp32" / "fp16" / "int8" / "q8" -> VisionPrecision; throws q3vl::Error(usage) naming `--vision-precision`.
VisionPrecision parse_vision_precision(std::string_view text);
const char* to_string(VisionPrecision precision);

struct VisionGraphOptions {
  VisionPrecision precision = VisionPrecision::fp32;
  // Whether the graph may use q3vl's own ops (the "q3vl" domain, which only q3vl's runtime
  // registers). At int8 and q8 the attention's qkv projection and its two products then
  // run in bf16 (q3vl.Bf16Linear, q3vl.Bf16Attention; vision_layers.h); without them they
  // stay fp32 (GenAI packages).
  bool q3vl_ops = true;
};

// Graph IO names: defined once in io/vision_io.h (the runtime binds the same names);
// the manifest records them.
using io::kVisionDeepstackFeatures;
using io::kVisionMergedTokens;
using io::kVisionPixelValues;
using io::kVisionPosEmbedIndices;
using io::kVisionPosEmbedWeights;
using io::kVisionRotaryCos;
using io::kVisionRotarySin;

// One graph input or output as the manifest describes it.
struct VisionGraphTensor {
  std::string name;
  std::string dtype;               // "float32" / "int64"
  std::vector<std::string> shape;  // fixed sizes as numbers, symbolic dims by name
};
struct VisionGraphInfo {
  std::vector<VisionGraphTensor> inputs;
  std::vector<VisionGraphTensor> outputs;
};

// The IO of the vision graph for a config (no weights needed). Throws q3vl::Error(config)
// for an invalid vision config (see write_vision_graph).
VisionGraphInfo describe_vision_graph(const ModelConfig& config);

// Adds the whole vision encoder to `graph` (inputs, nodes, weights, outputs); the caller
// then calls graph.save(). Weights are read from `checkpoint` under "model.visual."
// (or "visual." if the checkpoint uses that prefix), converted to float32 (or float16 for
// fp16) one tensor at a time, and streamed into the graph's weights file.
// Returns the graph's IO description.
// Throws q3vl::Error: config (vision config not buildable: head_dim not a multiple of 4,
// num_position_embeddings not a square, a DeepStack index outside [0, depth), merge size
// not positive), shape (a weight missing or of the wrong shape; the message names the
// tensor and both shapes), plus whatever Graph throws (io).
VisionGraphInfo write_vision_graph(Graph& graph, const io::Checkpoint& checkpoint,
                                   const ModelConfig& config,
                                   const VisionGraphOptions& options = {});

// The encoder body that the q3vl vision graph above and the GenAI one
// (builder/genai_vision_graph.h) share; they differ only in where the grid tables come
// from (graph inputs here, computed in the graph there) and how the outputs are laid out.
struct VisionTowerInputs {
  Value pixels;       // f32 [S, L, P], each segment's rows in merge-block order
  Value tap_indices;  // i64 [L, 4]  bilinear pos_embed taps (vision/grid_tables.h)
  Value tap_weights;  // f32 [L, 4]
  Value rotary_cos;   // f32 [L, head_dim / 2]: [row angles | col angles] (the first half
  Value rotary_sin;   //   of grid_tables' rows; the second half repeats it)
};
struct VisionTowerOutputs {
  Value merged;                  // f32 [S * L / m^2, out_hidden_size] (merger)
  std::vector<Value> deepstack;  // K values shaped like `merged`, in deepstack_visual_indexes order
};
// Adds patch embedding, position embedding, the blocks, DeepStack mergers and the final
// merger. Validates the vision config first; throws as write_vision_graph does.
VisionTowerOutputs write_vision_tower(Graph& graph, const io::Checkpoint& checkpoint, const ModelConfig& config,
                                      const VisionGraphOptions& options, const VisionTowerInputs& inputs);

}  // namespace q3vl::builder
