#include "builder/vision_layers.h"

#include <vector>

namespace q3vl::builder {
namespace {

// GELU as ONNX Gelu-20: "tanh" for HF gelu_pytorch_tanh (the block MLP), "none" for
// nn.GELU() (the mergers). write_vision_graph rejects other activations up front.
Value write_gelu(Graph& g, Value x, const char* approximate) {
  return g.op("Gelu", {x}, {{"approximate", approximate}});
}

// HF apply_rotary_pos_emb_vision: x * cos + rotate_half(x) * sin, in float32, where
// rotate_half([x1 | x2]) = [-x2 | x1] over the last axis (head_dim).
// qk: [S, L, 2, heads, head_dim]; cos/sin broadcast from [L, 1, 1, head_dim].
Value write_rotary(VisionContext& ctx, Value qk) {
  Graph& g = ctx.graph;
  const std::int64_t half = ctx.config.head_dim() / 2;
  auto [x1, x2] = g.ops<2>("Split", {qk, g.constant_i64({half, half})}, {{"axis", -1}});
  const Value rotated = g.op("Concat", {g.op("Neg", {x2}), x1}, {{"axis", -1}});
  return g.op("Add", {g.op("Mul", {qk, ctx.rotary_cos}), g.op("Mul", {rotated, ctx.rotary_sin})});
}

}  // namespace

Value write_layer_norm(VisionContext& ctx, const std::string& path, Value x, std::int64_t width) {
  auto scope = ctx.graph.scope(path);
  const Value weight = ctx.weights.vector(path + ".weight", {width});
  const Value bias = ctx.weights.vector(path + ".bias", {width});
  return ctx.graph.op("LayerNormalization", {x, weight, bias}, {{"axis", -1}, {"epsilon", 1e-6f}});
}

// Gemm with the checkpoint's float weight (fp32, or fp16 cast back to fp32).
Value write_float_linear(VisionContext& ctx, const std::string& path, Value x, std::int64_t in,
                         std::int64_t out) {
  auto scope = ctx.graph.scope(path);
  const Value weight = ctx.weights.matrix(path + ".weight", {out, in}, out, in);
  const Value bias = ctx.weights.vector(path + ".bias", {out});
  return ctx.graph.op("Gemm", {x, weight, bias}, {{"transB", 1}});
}

Value write_linear(VisionContext& ctx, const std::string& path, Value x, std::int64_t in,
                   std::int64_t out) {
  if (ctx.weights.precision() != VisionPrecision::int8) return write_float_linear(ctx, path, x, in, out);
  // y = dequant(quant_u8(x) @ q) * scale + b: ORT quantizes x per call (one scale/zero point).
  auto scope = ctx.graph.scope(path);
  const auto quantized = ctx.weights.quantized_matrix(path + ".weight", out, in);
  const Value bias = ctx.weights.vector(path + ".bias", {out});
  return ctx.graph.op("com.microsoft.DynamicQuantizeMatMul", {x, quantized.weight, quantized.scale, Value{}, bias});
}

// x: [N, C]
// qkv = x Wqkv^T + b                              [N, 3C], columns [q | k | v], head-major
// q, k = rotary(q, k)                              [S, L, heads, d] each, fp32
// o = softmax(q k^T / sqrt(d)) v per segment       [S, L, C]
// y = o Wproj^T + b                                [N, C]
Value write_vision_attention(VisionContext& ctx, const std::string& path, Value x) {
  Graph& g = ctx.graph;
  const VisionConfig& v = ctx.config;
  const std::int64_t c = v.hidden_size;
  // qkv and proj stay float even at int8: their error goes through (or comes straight out
  // of) the softmax. Measured on the 4B vision dims (random weights, 448x448): all linears
  // int8 gave merged-token cosine 0.9984 vs fp32; with qkv and proj float 0.9992 (every
  // DeepStack feature >= 0.9990). Quantizing qkv alone took a 4-block config from >0.9999 to
  // 0.996 (tests/builder/test_vision_graph.cpp Fp16AndInt8StayCloseToFp32).
  const Value qkv = write_float_linear(ctx, path + ".qkv", x, c, 3 * c);

  Value flat;
  {
    auto scope = g.scope(path);
    const Value qkv5 = g.op("Reshape", {qkv, ctx.shape_qkv});  // [S, L, 3, heads, d]
    auto [qk, value] = g.ops<2>("Split", {qkv5, g.constant_i64({2, 1})}, {{"axis", 2}});
    auto [query, key] =
        g.ops<2>("Split", {write_rotary(ctx, qk), g.constant_i64({1, 1})}, {{"axis", 2}});
    // MultiHeadAttention with only q/k/v and one output takes ORT's CPU flash-attention
    // path: batch = segment, so attention stays inside a segment and no L x L buffer exists.
    const Value attended = g.op(
        "com.microsoft.MultiHeadAttention",
        {g.op("Reshape", {query, ctx.shape_slc}), g.op("Reshape", {key, ctx.shape_slc}),
         g.op("Reshape", {value, ctx.shape_slc})},
        {{"num_heads", v.num_heads}});
    flat = g.op("Reshape", {attended, g.constant_i64({-1, c})});
  }
  return write_float_linear(ctx, path + ".proj", flat, c, c);
}

Value write_vision_mlp(VisionContext& ctx, const std::string& path, Value x) {
  const VisionConfig& v = ctx.config;
  const Value hidden = write_linear(ctx, path + ".linear_fc1", x, v.hidden_size, v.intermediate_size);
  Value activated;
  {
    auto scope = ctx.graph.scope(path);
    activated = write_gelu(ctx.graph, hidden, v.hidden_act == "gelu" ? "none" : "tanh");
  }
  return write_linear(ctx, path + ".linear_fc2", activated, v.intermediate_size, v.hidden_size);
}

Value write_vision_block(VisionContext& ctx, std::int64_t index, Value x) {
  const std::string path = "blocks." + std::to_string(index);
  const std::int64_t c = ctx.config.hidden_size;
  const Value attn = write_vision_attention(ctx, path + ".attn", write_layer_norm(ctx, path + ".norm1", x, c));
  Value h;
  {
    auto scope = ctx.graph.scope(path);
    h = ctx.graph.op("Add", {x, attn});
  }
  const Value mlp = write_vision_mlp(ctx, path + ".mlp", write_layer_norm(ctx, path + ".norm2", h, c));
  auto scope = ctx.graph.scope(path);
  return ctx.graph.op("Add", {h, mlp});
}

// Rows n*m^2 .. n*m^2 + m^2 - 1 are one m x m merge block (merge-block order), so
// grouping is a reshape [N, C] -> [N / m^2, m^2 * C].
Value write_patch_merger(VisionContext& ctx, const std::string& path, Value x, bool postshuffle_norm) {
  Graph& g = ctx.graph;
  const VisionConfig& v = ctx.config;
  const std::int64_t c = v.hidden_size;
  const std::int64_t grouped = c * v.spatial_merge_size * v.spatial_merge_size;
  auto group = [&](Value rows) {
    auto scope = g.scope(path);
    return g.op("Reshape", {rows, g.constant_i64({-1, grouped})});
  };
  const Value merged = postshuffle_norm ? write_layer_norm(ctx, path + ".norm", group(x), grouped)
                                        : group(write_layer_norm(ctx, path + ".norm", x, c));
  const Value hidden = write_linear(ctx, path + ".linear_fc1", merged, grouped, grouped);
  Value activated;
  {
    auto scope = g.scope(path);
    activated = write_gelu(g, hidden, "none");
  }
  return write_linear(ctx, path + ".linear_fc2", activated, grouped, v.out_hidden_size);
}

}  // namespace q3vl::builder
