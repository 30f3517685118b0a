#include "builder/vision_graph.h"

#include <algorithm>
#include <set>
#include <string>

#include "builder/vision_layers.h"
#include "builder/vision_weights.h"
#include "q3vl/error.h"
#include "vision/grid_tables.h"

namespace q3vl::builder {
namespace {

void require_positive(std::int64_t value, const char* field) {
  if (value <= 0) {
    throw_error(ErrorKind::config, "config.json", std::string("vision_config.") + field,
                "positive integer", std::to_string(value));
  }
}

// Everything the graph's structure depends on, checked before any weight is read.
void validate_vision_config(const VisionConfig& v) {
  require_positive(v.depth, "depth");
  require_positive(v.hidden_size, "hidden_size");
  require_positive(v.num_heads, "num_heads");
  require_positive(v.intermediate_size, "intermediate_size");
  require_positive(v.out_hidden_size, "out_hidden_size");
  require_positive(v.in_channels, "in_channels");
  require_positive(v.patch_size, "patch_size");
  require_positive(v.temporal_patch_size, "temporal_patch_size");
  vision::GridTableParams::from_config(v);  // merge size, square table, head_dim % 4
  if (v.hidden_act != "gelu_pytorch_tanh" && v.hidden_act != "gelu_new" && v.hidden_act != "gelu") {
    throw_error(ErrorKind::unsupported, "config.json", "vision_config.hidden_act",
                "gelu_pytorch_tanh, gelu_new or gelu", v.hidden_act);
  }
  std::set<std::int64_t> seen;
  for (std::int64_t index : v.deepstack_visual_indexes) {
    if (index < 0 || index >= v.depth || !seen.insert(index).second) {
      throw_error(ErrorKind::config, "config.json", "vision_config.deepstack_visual_indexes",
                  "distinct block indices in [0, " + std::to_string(v.depth) + ")",
                  std::to_string(index));
    }
  }
}

// HF Qwen3VLVisionPatchEmbed: a Conv3d whose kernel equals its stride, i.e. a linear
// layer on each flattened (c, tp, dy, dx) row. pixels: [S, L, P] -> [N, C].
Value write_patch_embed(VisionContext& ctx, Value pixels) {
  const VisionConfig& v = ctx.config;
  const std::int64_t p = v.patch_input_size();
  auto scope = ctx.graph.scope("patch_embed.proj");
  const Value rows = ctx.graph.op("Reshape", {pixels, ctx.graph.constant_i64({-1, p})});
  const Value weight = ctx.weights.matrix(
      "patch_embed.proj.weight",
      {v.hidden_size, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size},
      v.hidden_size, p);
  const Value bias = ctx.weights.vector("patch_embed.proj.bias", {v.hidden_size});
  return ctx.graph.op("Gemm", {rows, weight, bias}, {{"transB", 1}});
}

// HF fast position embedding: pos[l] = sum_k weights[l, k] * pos_embed[indices[l, k]]
// (the host computes the bilinear taps, vision/grid_tables.h), the same for every segment.
// x: [N, C] -> x + pos broadcast over segments.
Value write_pos_embed(VisionContext& ctx, Value x, Value indices, Value weights) {
  Graph& g = ctx.graph;
  const VisionConfig& v = ctx.config;
  const Value table = ctx.weights.vector("pos_embed.weight", {v.num_position_embeddings, v.hidden_size});
  auto scope = g.scope("pos_embed");
  const Value taps = g.op("Gather", {table, indices}, {{"axis", 0}});              // [L, 4, C]
  const Value row_weights = g.op("Unsqueeze", {weights, g.constant_i64({1})});     // [L, 1, 4]
  const Value pos = g.op("MatMul", {row_weights, taps});                            // [L, 1, C]
  const Value pos_rows = g.op("Reshape", {pos, g.constant_i64({-1, v.hidden_size})});  // [L, C]
  const Value sum = g.op("Add", {g.op("Reshape", {x, ctx.shape_slc}), pos_rows});  // [S, L, C]
  return g.op("Reshape", {sum, g.constant_i64({-1, v.hidden_size})});
}

}  // namespace

VisionPrecision parse_vision_precision(std::string_view text) {
  if (text == "fp32") return VisionPrecision::fp32;
  if (text == "fp16") return VisionPrecision::fp16;
  if (text == "int8") return VisionPrecision::int8;
  if (text == "q8") return VisionPrecision::q8;
  throw_error(ErrorKind::usage, "", "--vision-precision", "fp32, fp16, int8 or q8", std::string(text));
}

const char* to_string(VisionPrecision precision) {
  switch (precision) {
    case VisionPrecision::fp32: return "fp32";
    case VisionPrecision::fp16: return "fp16";
    case VisionPrecision::int8: return "int8";
    case VisionPrecision::q8: return "q8";
  }
  return "unknown";
}

VisionGraphInfo describe_vision_graph(const ModelConfig& config) {
  const VisionConfig& v = config.vision;
  validate_vision_config(v);
  const std::string p = std::to_string(v.patch_input_size());
  const std::string d = std::to_string(v.head_dim());
  const std::string out = std::to_string(v.out_hidden_size);
  const std::string k = std::to_string(v.deepstack_visual_indexes.size());
  VisionGraphInfo info;
  info.inputs = {
      {kVisionPixelValues, "float32", {"num_segments", "segment_patches", p}},
      {kVisionPosEmbedIndices, "int64", {"segment_patches", "4"}},
      {kVisionPosEmbedWeights, "float32", {"segment_patches", "4"}},
      {kVisionRotaryCos, "float32", {"segment_patches", d}},
      {kVisionRotarySin, "float32", {"segment_patches", d}},
  };
  info.outputs = {
      {kVisionMergedTokens, "float32", {"num_segments", "segment_tokens", out}},
      {kVisionDeepstackFeatures, "float32", {k, "num_segments", "segment_tokens", out}},
  };
  return info;
}

VisionTowerOutputs write_vision_tower(Graph& graph, const io::Checkpoint& checkpoint, const ModelConfig& config,
                                      const VisionGraphOptions& options, const VisionTowerInputs& in) {
  const VisionConfig& v = config.vision;
  validate_vision_config(v);
  VisionWeights weights(graph, checkpoint, options.precision);
  Graph& g = graph;
  const std::int64_t c = v.hidden_size;

  auto tower = g.scope("model.visual");
  const Value segments_and_len = g.op("Shape", {in.pixels}, {{"start", 0}, {"end", 2}});  // {S, L}
  VisionContext ctx{
      g,
      weights,
      v,
      options.q3vl_ops,
      g.op("Concat", {segments_and_len, g.constant_i64({c})}, {{"axis", 0}}),
      g.op("Concat", {segments_and_len, g.constant_i64({3 * c})}, {{"axis", 0}}),
      in.rotary_cos,
      in.rotary_sin,
      g.constant_i64({0}),
  };

  Value x = write_patch_embed(ctx, in.pixels);
  x = write_pos_embed(ctx, x, in.tap_indices, in.tap_weights);

  // DeepStack: the output of block deepstack_visual_indexes[j] feeds deepstack_merger_list.j.
  VisionTowerOutputs out;
  out.deepstack.resize(v.deepstack_visual_indexes.size());
  for (std::int64_t b = 0; b < v.depth; ++b) {
    x = write_vision_block(ctx, b, x);
    const auto& taps = v.deepstack_visual_indexes;
    const auto it = std::find(taps.begin(), taps.end(), b);
    if (it != taps.end()) {
      const auto j = static_cast<std::size_t>(it - taps.begin());
      out.deepstack[j] = write_patch_merger(ctx, "deepstack_merger_list." + std::to_string(j), x, true);
    }
  }
  out.merged = write_patch_merger(ctx, "merger", x, false);
  return out;
}

VisionGraphInfo write_vision_graph(Graph& graph, const io::Checkpoint& checkpoint,
                                   const ModelConfig& config, const VisionGraphOptions& options) {
  const VisionConfig& v = config.vision;
  VisionGraphInfo info = describe_vision_graph(config);
  Graph& g = graph;
  const std::int64_t d = v.head_dim();
  const auto k = static_cast<std::int64_t>(v.deepstack_visual_indexes.size());

  const Value pixels =
      g.input(kVisionPixelValues, DType::f32, {"num_segments", "segment_patches", v.patch_input_size()});
  const Value tap_indices = g.input(kVisionPosEmbedIndices, DType::i64, {"segment_patches", 4});
  const Value tap_weights = g.input(kVisionPosEmbedWeights, DType::f32, {"segment_patches", 4});
  const Value cos = g.input(kVisionRotaryCos, DType::f32, {"segment_patches", d});
  const Value sin = g.input(kVisionRotarySin, DType::f32, {"segment_patches", d});

  Value cos_half, sin_half;
  {
    auto scope = g.scope("model.visual.rotary");
    auto first_half = [&](const Value& table) {
      return g.op("Slice", {table, g.constant_i64({0}), g.constant_i64({d / 2}), g.constant_i64({1})});
    };
    cos_half = first_half(cos);
    sin_half = first_half(sin);
  }
  const VisionTowerOutputs tower =
      write_vision_tower(g, checkpoint, config, options, {pixels, tap_indices, tap_weights, cos_half, sin_half});
  auto scope = g.scope("model.visual");
  const Value segments = g.op("Shape", {pixels}, {{"start", 0}, {"end", 1}});  // {S}

  // [N / m^2, D] -> [S, L / m^2, D]; DeepStack stacked to [K, S, L / m^2, D].
  const Value token_shape =
      g.op("Concat", {segments, g.constant_i64({-1, v.out_hidden_size})}, {{"axis", 0}});
  const Value merged_out = g.op("Reshape", {tower.merged, token_shape});
  Value deepstack_out;
  if (k == 0) {
    // No taps: an empty [0, S, T, D] tensor keeps the output contract.
    const Value one = g.op("Unsqueeze", {merged_out, g.constant_i64({0})});
    deepstack_out = g.op("Slice", {one, g.constant_i64({0}), g.constant_i64({0}), g.constant_i64({0})});
  } else {
    std::vector<Value> stacked;
    for (const Value& feature : tower.deepstack) {
      stacked.push_back(g.op("Unsqueeze", {g.op("Reshape", {feature, token_shape}), g.constant_i64({0})}));
    }
    deepstack_out = stacked.size() == 1 ? stacked[0] : g.op("Concat", stacked, {{"axis", 0}});
  }
  g.output(merged_out, kVisionMergedTokens, DType::f32, {"num_segments", "segment_tokens", v.out_hidden_size});
  g.output(deepstack_out, kVisionDeepstackFeatures, DType::f32,
           {k, "num_segments", "segment_tokens", v.out_hidden_size});
  return info;
}

}  // namespace q3vl::builder
