#include "builder/vision_layers.h"

#include <cmath>
#include <vector>

#include "builder/linear.h"
#include "kernels/bf16_attention.h"  // kBf16AttentionOp
#include "kernels/bf16_linear.h"     // kBf16LinearOp

namespace q3vl::builder {
namespace {

// GELU as ONNX Gelu-20: "tanh" for HF gelu_pytorch_tanh (the block MLP), "none" for
// nn.GELU() (the mergers). write_vision_graph rejects other activations up front.
Value write_gelu(Graph& g, Value x, const char* approximate) {
  return g.op("Gelu", {x}, {{"approximate", approximate}});
}

// HF apply_rotary_pos_emb_vision: x * cos + rotate_half(x) * sin in float32, with
// rotate_half([x1 | x2]) = [-x2 | x1] per head. HF's cos/sin rows repeat their first half,
// so com.microsoft.RotaryEmbedding (non-interleaved) with the half tables [L, d/2] and
// positions 0..L-1 of each segment computes exactly that, in one pass.
// x: [S, L, heads * d] -> same shape.
Value write_rotary(VisionContext& ctx, Value x) {
  return ctx.graph.op("com.microsoft.RotaryEmbedding",
                      {x, ctx.rotary_positions, ctx.rotary_cos, ctx.rotary_sin},
                      {{"num_heads", ctx.config.num_heads}, {"interleaved", std::int64_t{0}}});
}

// y = DynamicQuantizeMatMul(x, q) with q int8 [in, out] and one scale per output column.
// per_row: x is first divided by r = max|x_row| / 127 (so each row uses the whole int8
// range, not a share of the tensor's), and the output rows are multiplied back by r.
Value write_dynamic_quantized_linear(VisionContext& ctx, const std::string& path, Value x,
                                     std::int64_t in, std::int64_t out, bool per_row) {
  Graph& g = ctx.graph;
  const auto quantized = ctx.weights.quantized_matrix(path + ".weight", out, in);
  const Value bias = ctx.weights.vector(path + ".bias", {out});
  if (!per_row) {
    return g.op("com.microsoft.DynamicQuantizeMatMul", {x, quantized.weight, quantized.scale, Value{}, bias});
  }
  const Value top = g.op("ReduceMax", {g.op("Abs", {x}), g.constant_i64({-1})}, {{"keepdims", std::int64_t{1}}});
  // The floor keeps an all-zero row finite (0 / tiny = 0).
  const Value row_scale = g.op("Div", {g.op("Max", {top, g.constant_f32(1e-30f)}), g.constant_f32(127.0f)});
  const Value y = g.op("com.microsoft.DynamicQuantizeMatMul",
                       {g.op("Div", {x, row_scale}), quantized.weight, quantized.scale});
  return g.op("Add", {g.op("Mul", {y, row_scale}), bias});
}

// q8: q3vl.QuantLinear with 8-bit weights per 32-block (round to nearest: at 8 bits the
// weight error is far below the int8 activations', so mse's scale search buys nothing)
// and the bias folded into the op; builder/linear.h writes the kernel's layout.
Value write_q8_linear(VisionContext& ctx, const std::string& path, Value x, std::int64_t in, std::int64_t out) {
  LinearFormat format;
  format.precision = WeightPrecision::int8;
  format.kernels = LinearKernels::q3vl;
  format.quant.block_size = 32;
  format.quant.method = QuantMethod::rtn;
  return linear(ctx.graph, x, ctx.weights.read(path + ".weight", {out, in}), out, in, format,
                ctx.weights.read(path + ".bias", {out}));
}

// q3vl.Bf16Linear: W rounded to bf16 in the kernel's pair layout, x rounded per call,
// float sums, the bias added in the op.
Value write_bf16_linear(VisionContext& ctx, const std::string& path, Value x, std::int64_t in, std::int64_t out) {
  Graph& g = ctx.graph;
  const Value w = ctx.weights.bf16_matrix(path + ".weight", out, in);
  const Value bias = ctx.weights.vector(path + ".bias", {out});
  return g.op(std::string("q3vl.") + kernels::kBf16LinearOp, {x, w, bias}, {{"K", in}, {"N", out}});
}

// Whether the float work int8 cannot carry (qkv, attention) runs in bf16 on q3vl's ops:
// at the quantized precisions, in graphs that may use them.
bool bf16_ops(const VisionContext& ctx) {
  return ctx.q3vl_ops &&
         (ctx.weights.precision() == VisionPrecision::int8 || ctx.weights.precision() == VisionPrecision::q8);
}

}  // namespace

Value write_layer_norm(VisionContext& ctx, const std::string& path, Value x, std::int64_t width) {
  auto scope = ctx.graph.scope(path);
  const Value weight = ctx.weights.vector(path + ".weight", {width});
  const Value bias = ctx.weights.vector(path + ".bias", {width});
  return ctx.graph.op("LayerNormalization", {x, weight, bias}, {{"axis", -1}, {"epsilon", 1e-6f}});
}

Value write_linear(VisionContext& ctx, const std::string& path, Value x, std::int64_t in,
                   std::int64_t out, Int8Activations activations) {
  auto scope = ctx.graph.scope(path);
  if (activations == Int8Activations::bf16 && bf16_ops(ctx)) return write_bf16_linear(ctx, path, x, in, out);
  const bool quantized =
      ctx.weights.precision() == VisionPrecision::int8 || ctx.weights.precision() == VisionPrecision::q8;
  if (!quantized || activations == Int8Activations::none || activations == Int8Activations::bf16) {
    // The checkpoint's float weight (fp32, or fp16 cast back to fp32 at session load).
    const Value weight = ctx.weights.matrix(path + ".weight", {out, in}, out, in);
    const Value bias = ctx.weights.vector(path + ".bias", {out});
    return ctx.graph.op("Gemm", {x, weight, bias}, {{"transB", 1}});
  }
  if (ctx.weights.precision() == VisionPrecision::q8) return write_q8_linear(ctx, path, x, in, out);
  switch (activations) {
    case Int8Activations::per_row: return write_dynamic_quantized_linear(ctx, path, x, in, out, true);
    case Int8Activations::per_tensor: return write_dynamic_quantized_linear(ctx, path, x, in, out, false);
    case Int8Activations::none:
    case Int8Activations::bf16: break;
  }
  return {};
}

// x: [N, C]
// qkv = x Wqkv^T + b                              [N, 3C], columns [q | k | v], head-major
// q, k = rotary(q), rotary(k)                     [S, L, C] each, fp32
// o = softmax(q k^T / sqrt(d)) v per segment      [S, L, C]
// y = o Wproj^T + b                               [N, C]
Value write_vision_attention(VisionContext& ctx, const std::string& path, Value x) {
  Graph& g = ctx.graph;
  const VisionConfig& v = ctx.config;
  const std::int64_t c = v.hidden_size;
  // qkv is not int8: its error goes through the softmax. Measured (4B vision dims,
  // gain-2 random weights, 1024x768): DeepStack cosine vs fp32 0.9987 with qkv per_row,
  // 0.9989 with qkv per 32-block (MatMulNBits, 2.3x the per_row cost); and on the 4-block
  // test config (tests/builder/test_vision_graph.cpp) int8 qkv falls below 0.999.
  // The same holds at q8 (per-32 activations too): on the 4B-like test config
  // (tests/builder/test_vision_int8.cpp) q8 qkv gives merged cosine 0.9985, DeepStack
  // 0.9988; with qkv float 0.9996 / 0.9997. bf16 keeps 8 significant bits of every
  // value whatever its row's range, at twice fp32's rate where vdpbf16ps exists.
  const Value qkv = write_linear(ctx, path + ".qkv", x, c, 3 * c, Int8Activations::bf16);
  Value flat;
  {
    auto scope = g.scope(path);
    const Value per_segment = g.op("Reshape", {qkv, ctx.shape_sl3c});  // [S, L, 3C]
    auto [query, key, value] = g.ops<3>("Split", {per_segment, g.constant_i64({c, c, c})}, {{"axis", -1}});
    // batch = segment, so attention stays inside a segment. At int8 and q8 with q3vl's ops:
    // q3vl.Bf16Attention (bf16 products, float softmax; kernels/bf16_attention.h), the
    // encoder's largest cost at large images (L^2 per layer). Otherwise MultiHeadAttention
    // with only q/k/v and one output, which takes ORT's CPU flash-attention path.
    const Value q_rotated = write_rotary(ctx, query), k_rotated = write_rotary(ctx, key);
    const Value attended =
        bf16_ops(ctx) ? g.op(std::string("q3vl.") + kernels::kBf16AttentionOp, {q_rotated, k_rotated, value},
                    {{"num_heads", v.num_heads},
                     {"head_dim", v.head_dim()},
                     {"scale", static_cast<float>(1.0 / std::sqrt(static_cast<double>(v.head_dim())))}})
             : g.op("com.microsoft.MultiHeadAttention", {q_rotated, k_rotated, value}, {{"num_heads", v.num_heads}});
    flat = g.op("Reshape", {attended, g.constant_i64({-1, c})});
  }
  return write_linear(ctx, path + ".proj", flat, c, c, Int8Activations::per_row);
}

Value write_vision_mlp(VisionContext& ctx, const std::string& path, Value x) {
  const VisionConfig& v = ctx.config;
  const Value hidden =
      write_linear(ctx, path + ".linear_fc1", x, v.hidden_size, v.intermediate_size, Int8Activations::per_row);
  Value activated;
  {
    auto scope = ctx.graph.scope(path);
    activated = write_gelu(ctx.graph, hidden, v.hidden_act == "gelu" ? "none" : "tanh");
  }
  return write_linear(ctx, path + ".linear_fc2", activated, v.intermediate_size, v.hidden_size,
                      Int8Activations::per_tensor);
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
  const Value hidden = write_linear(ctx, path + ".linear_fc1", merged, grouped, grouped, Int8Activations::per_row);
  Value activated;
  {
    auto scope = g.scope(path);
    activated = write_gelu(g, hidden, "none");
  }
  return write_linear(ctx, path + ".linear_fc2", activated, grouped, v.out_hidden_size,
                      Int8Activations::per_tensor);
}

}  // namespace q3vl::builder
