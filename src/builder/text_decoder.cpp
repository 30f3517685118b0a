#include "builder/text_decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>

#include "builder/kv_attention.h"
#include "builder/text_moe.h"
#include "builder/text_rotary.h"
#include "io/decoder_io.h"
#include "kernels/qk_norm_rope.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr const char* kPrefix = "model.language_model";

// What every layer shares: config, the MRoPE tables and GQA's sequence-length inputs.
struct LayerContext {
  const TextConfig& text;
  const TextRotaryTables& rotary;
  Value seqlens_k;              // i32 [B]: valid tokens per row - 1
  Value total_sequence_length;  // i32 scalar
  bool fuse_q3vl_ops;           // DecoderGraphOptions::fuse_q3vl_ops
  DType kv_cache;               // DecoderGraphOptions::kv_cache
};

struct AttentionOutput {
  Value hidden;
  Value present_key;
  Value present_value;
};

struct ProjectionPart {
  const char* module;  // HF module name ("q_proj"), read as "<scope>.<module>.weight"
  std::int64_t out;    // its output features
  const LinearFormat* format;  // how the recipe stores it
};

// Whether two formats store a weight the same way (they differ only where a recipe rule
// changed them: precision and block size).
bool same_storage(const LinearFormat& a, const LinearFormat& b) {
  return a.precision == b.precision && a.quant.block_size == b.quant.block_size && a.fake_quant == b.fake_quant;
}

// y = [x W_0^T | x W_1^T | ...] (+ b) for parts the recipe stores alike: one matmul over
// the weights stacked along the output features, [sum_j out_j, in], in scope `module`.
// Block quantization works per output row, so the stack quantizes exactly as the parts
// would one by one.
Value write_stacked_matmul(Graph& g, WeightReader& w, const Value& x, const std::string& module,
                           std::span<const ProjectionPart> parts, std::int64_t in, bool bias,
                           const LinearFormat& format) {
  std::int64_t total = 0;
  std::vector<float> weight, b;
  for (const ProjectionPart& part : parts) {
    auto scope = g.scope(part.module);
    auto wj = w.f32(g.scoped("weight"), {part.out, in});
    // The first part's rows are taken, not copied (a lone part is its own stack).
    if (weight.empty()) weight = std::move(wj); else weight.insert(weight.end(), wj.begin(), wj.end());
    if (bias) {
      const auto bj = w.f32(g.scoped("bias"), {part.out});
      b.insert(b.end(), bj.begin(), bj.end());
    }
    total += part.out;
  }
  auto scope = g.scope(module);
  return linear(g, x, std::move(weight), total, in, format, std::move(b));
}

// Reads "<scope>.<module>.weight" [out, in] and adds y = x W^T (+ bias when the config has one).
Value write_projection(Graph& g, WeightReader& w, const Value& x, const char* module, std::int64_t out,
                       std::int64_t in, const LinearFormat& format, bool bias) {
  const ProjectionPart part{module, out, &format};
  return write_stacked_matmul(g, w, x, module, {&part, 1}, in, bias, format);
}

// y = [x W_0^T | x W_1^T | ...] (+ b): every part's output. Decode is bound by reading
// weights, and one quantized matmul over the stacked parts costs one kernel dispatch and
// one pass over x instead of one per part. Where a recipe stores the parts differently,
// each run of consecutive parts stored alike is one matmul ("q_proj+k_proj"; a lone part
// keeps its module's name), concatenated to the same y.
Value write_stacked_projection(Graph& g, WeightReader& w, const Value& x, const std::string& stacked_module,
                               const std::vector<ProjectionPart>& parts, std::int64_t in, bool bias) {
  std::vector<std::span<const ProjectionPart>> runs;
  for (std::size_t i = 0; i < parts.size();) {
    std::size_t j = i + 1;
    while (j < parts.size() && same_storage(*parts[j].format, *parts[i].format)) ++j;
    runs.emplace_back(parts.data() + i, j - i);
    i = j;
  }
  std::string stacked_scope;  // gptq's statistics: the calibration decoder stacks every part
  {
    auto scope = g.scope(stacked_module);
    stacked_scope = g.scope_path();
  }
  std::vector<Value> ys;
  for (const auto run : runs) {
    std::string module = stacked_module;  // a run of every part is the stacked projection
    if (run.size() < parts.size()) {
      module.clear();
      for (const ProjectionPart& part : run) module += (module.empty() ? "" : "+") + std::string(part.module);
    }
    LinearFormat format = *run.front().format;
    format.calibration_scope = stacked_scope;
    ys.push_back(write_stacked_matmul(g, w, x, module, run, in, bias, format));
  }
  if (ys.size() == 1) return ys.front();
  auto scope = g.scope(stacked_module);
  return g.op("Concat", ys, {{"axis", -1}});
}

// The parts of a stacked projection's output y, split along the last axis.
std::vector<Value> split_parts(Graph& g, const Value& y, const std::vector<ProjectionPart>& parts) {
  std::vector<std::int64_t> splits;
  for (const ProjectionPart& part : parts) splits.push_back(part.out);
  return g.ops("Split", {y, g.constant_i64(splits)}, static_cast<int>(parts.size()), {{"axis", -1}});
}

// Whether a layer in `format` gets q3vl's fused ops: exactly when its linears are q3vl
// ops (such a package already needs q3vl's op domain; standard MatMulNBits and float
// packages stay loadable by any ONNX Runtime consumer).
bool uses_q3vl_ops(const LinearFormat& format, bool fuse) {
  return fuse && format.kernels == LinearKernels::q3vl && is_quantized(format.precision) && !format.fake_quant;
}

// The formats of one layer's linears (DecoderGraphOptions::recipe resolved).
struct LayerFormats {
  LinearFormat q, k, v, o, gate, up, down, experts;
};

LayerFormats layer_formats(const DecoderGraphOptions& options, std::int64_t layer, std::int64_t num_layers) {
  auto f = [&](std::string_view tensor) { return resolve_format(options.layers, options.recipe, tensor, layer, num_layers); };
  return {f("q_proj"), f("k_proj"), f("v_proj"), f("o_proj"), f("gate_proj"), f("up_proj"), f("down_proj"), f("experts")};
}

// y = weight * x / sqrt(mean(x^2, last axis) + eps);  x: [..., n]
Value write_rms_norm(Graph& g, WeightReader& w, const Value& x, const std::string& module,
                     std::int64_t n, double eps) {
  auto scope = g.scope(module);
  Value weight = g.initializer_f32(g.scoped("weight"), {n}, w.f32(g.scoped("weight"), {n}));
  return g.op("SimplifiedLayerNormalization", {x, weight}, {{"axis", -1}, {"epsilon", eps}});
}

// The residual stream between blocks, kept as `x + delta` with the add not yet done, so
// that it fuses with the RMSNorm that reads it (one SkipSimplifiedLayerNormalization
// instead of Add + SimplifiedLayerNormalization). `delta` is empty when nothing is pending.
struct Residual {
  Value x;
  Value delta;
};

struct NormedResidual {
  Value normed;  // rms_norm(x + delta)
  Value sum;     // x + delta
};

// sum = x + delta;  normed = weight * sum / sqrt(mean(sum^2, last axis) + eps);  x, delta: [B, T, n]
NormedResidual write_add_rms_norm(Graph& g, WeightReader& w, const Residual& r, const std::string& module,
                                  std::int64_t n, double eps) {
  if (r.delta.empty()) return {write_rms_norm(g, w, r.x, module, n, eps), r.x};
  auto scope = g.scope(module);
  Value weight = g.initializer_f32(g.scoped("weight"), {n}, w.f32(g.scoped("weight"), {n}));
  // Outputs: normed, mean and inv_std_var (unused, [B, T, 1]), input + skip.
  auto outs = g.ops("com.microsoft.SkipSimplifiedLayerNormalization", {r.delta, r.x, weight}, 4,
                    {{"epsilon", eps}});
  return {outs[0], outs[3]};
}

// Qwen3's per-head norm: rms_norm over each head's head_dim vector.
// x: [B, T, heads * head_dim] -> [B, T, heads, head_dim] -> norm -> [B, T, heads * head_dim]
Value write_head_norm(Graph& g, WeightReader& w, const Value& x, const std::string& module,
                      std::int64_t heads, const TextConfig& text) {
  Value per_head = g.op("Reshape", {x, g.constant_i64({0, 0, heads, text.head_dim})});
  Value normed = write_rms_norm(g, w, per_head, module, text.head_dim, text.rms_norm_eps);
  return g.op("Reshape", {normed, g.constant_i64({0, 0, heads * text.head_dim})});
}

// q = mrope(q_norm(x Wq^T)), k = mrope(k_norm(x Wk^T)), v = x Wv^T   (q/k/v: one stacked matmul)
// o = softmax(q k^T / sqrt(head_dim) + causal) v  (GQA: kv head j serves q heads j*g .. j*g+g-1)
// out = o Wo^T;   x: [B, T, hidden],  q: [B, T, heads * head_dim],  k, v: [B, T, kv_heads * head_dim]
AttentionOutput write_attention(Graph& g, WeightReader& w, const Value& x, const Value& past_key,
                                const Value& past_value, const LayerContext& ctx,
                                const LayerFormats& formats) {
  auto scope = g.scope("self_attn");
  const TextConfig& t = ctx.text;
  const std::int64_t q_width = t.num_attention_heads * t.head_dim;
  const std::int64_t kv_width = t.num_key_value_heads * t.head_dim;
  const bool bias = t.attention_bias;

  const std::vector<ProjectionPart> parts{
      {"q_proj", q_width, &formats.q}, {"k_proj", kv_width, &formats.k}, {"v_proj", kv_width, &formats.v}};
  const Value qkv = write_stacked_projection(g, w, x, "qkv_proj", parts, t.hidden_size, bias);
  Value q, k, v;
  if (uses_q3vl_ops(formats.q, ctx.fuse_q3vl_ops)) {
    // q_norm + k_norm + MRoPE on the packed output in one node (kernels/qk_norm_rope.h).
    auto weight = [&](const char* module) {
      auto norm = g.scope(module);
      return g.initializer_f32(g.scoped("weight"), {t.head_dim}, w.f32(g.scoped("weight"), {t.head_dim}));
    };
    Value q_norm = weight("q_norm");
    Value k_norm = weight("k_norm");
    const auto qkv_out = g.ops<3>(std::string(kernels::kDomain) + "." + kernels::kQkNormRopeOp,
                                 {qkv, q_norm, k_norm, ctx.rotary.cos, ctx.rotary.sin},
                                 {{"num_heads", t.num_attention_heads},
                                  {"kv_num_heads", t.num_key_value_heads},
                                  {"head_dim", t.head_dim},
                                  {"epsilon", t.rms_norm_eps}});
    q = qkv_out[0];
    k = qkv_out[1];
    v = qkv_out[2];
  } else {
    const auto split = split_parts(g, qkv, parts);
    q = apply_text_rotary(g, write_head_norm(g, w, split[0], "q_norm", t.num_attention_heads, t), ctx.rotary);
    k = apply_text_rotary(g, write_head_norm(g, w, split[1], "k_norm", t.num_key_value_heads, t), ctx.rotary);
    v = split[2];
  }

  const KvAttention attn =
      write_kv_attention(g, {t.num_attention_heads, t.num_key_value_heads, t.head_dim, ctx.kv_cache}, q, k, v,
                         past_key, past_value, ctx.seqlens_k, ctx.total_sequence_length);
  Value out = write_projection(g, w, attn.output, "o_proj", t.hidden_size, q_width, formats.o, bias);
  return {out, attn.present_key, attn.present_value};
}

// y = down(silu(gate(x)) * up(x));  x: [B, T, hidden], gate/up: [B, T, intermediate] (one stacked
// matmul; with q3vl's fused ops one q3vl.QuantSwiGLU that also applies silu and the product).
Value write_mlp(Graph& g, WeightReader& w, const Value& x, const TextConfig& t, const LayerFormats& formats,
                bool fuse) {
  auto scope = g.scope("mlp");
  const LinearFormat& format = formats.gate;
  if (uses_q3vl_ops(format, fuse) && can_fuse_swiglu(format) && same_storage(format, formats.up)) {
    std::vector<float> gate, up;
    {
      auto gate_scope = g.scope("gate_proj");
      gate = w.f32(g.scoped("weight"), {t.intermediate_size, t.hidden_size});
    }
    {
      auto up_scope = g.scope("up_proj");
      up = w.f32(g.scoped("weight"), {t.intermediate_size, t.hidden_size});
    }
    Value act;
    {
      // The unfused path's stacked scope: gptq's calibration statistics are keyed by it.
      auto gate_up_scope = g.scope("gate_up_proj");
      act = swiglu_linear(g, x, gate, up, t.intermediate_size, t.hidden_size, format);
    }
    return write_projection(g, w, act, "down_proj", t.hidden_size, t.intermediate_size, formats.down, false);
  }
  const std::vector<ProjectionPart> parts{{"gate_proj", t.intermediate_size, &formats.gate},
                                          {"up_proj", t.intermediate_size, &formats.up}};
  const auto gate_up = split_parts(g, write_stacked_projection(g, w, x, "gate_up_proj", parts, t.hidden_size, false), parts);
  const Value& gate = gate_up[0];
  Value act = g.op("Mul", {gate, g.op("Sigmoid", {gate})});
  return write_projection(g, w, g.op("Mul", {act, gate_up[1]}), "down_proj", t.hidden_size,
                          t.intermediate_size, formats.down, false);
}

struct LayerOutput {
  Residual residual;  // the layer's output, h + mlp(...), with the add left pending
  Value present_key;
  Value present_value;
};

// x = in.x + in.delta;  h = x + attention(rms_norm(x));  out = h + mlp(rms_norm(h));  [B, T, hidden]
// where mlp is the sparse MoE block on the config's MoE layers (builder/text_moe.h).
LayerOutput write_decoder_layer(Graph& g, WeightReader& w, const Residual& in, std::int64_t layer,
                                const Value& past_key, const Value& past_value, const LayerContext& ctx,
                                const LayerFormats& formats, bool expose_router_logits) {
  auto scope = g.scope("layers." + std::to_string(layer));
  const TextConfig& t = ctx.text;
  const NormedResidual x = write_add_rms_norm(g, w, in, "input_layernorm", t.hidden_size, t.rms_norm_eps);
  AttentionOutput attn = write_attention(g, w, x.normed, past_key, past_value, ctx, formats);
  const NormedResidual h = write_add_rms_norm(g, w, {x.sum, attn.hidden}, "post_attention_layernorm",
                                              t.hidden_size, t.rms_norm_eps);
  Value mlp = t.is_moe_layer(layer) ? write_moe_block(g, w, h.normed, t, formats.experts, expose_router_logits)
                                    : write_mlp(g, w, h.normed, t, formats, ctx.fuse_q3vl_ops);
  return {{h.sum, mlp}, attn.present_key, attn.present_value};
}

void require(bool ok, const std::string& field, const std::string& expected, const std::string& got,
             ErrorKind kind = ErrorKind::config) {
  if (!ok) throw_error(kind, "config.json", field, expected, got);
}

}  // namespace

void validate_decoder_config(const ModelConfig& config) {
  const TextConfig& t = config.text;
  auto positive = [](std::int64_t v, const char* field) {
    require(v > 0, std::string("text_config.") + field, "positive integer", std::to_string(v));
  };
  positive(t.vocab_size, "vocab_size");
  positive(t.hidden_size, "hidden_size");
  positive(t.intermediate_size, "intermediate_size");
  positive(t.num_hidden_layers, "num_hidden_layers");
  positive(t.num_attention_heads, "num_attention_heads");
  positive(t.num_key_value_heads, "num_key_value_heads");
  positive(t.head_dim, "head_dim");
  require(t.head_dim % 2 == 0, "text_config.head_dim", "an even number", std::to_string(t.head_dim));
  require(t.num_attention_heads % t.num_key_value_heads == 0, "text_config.num_key_value_heads",
          "a divisor of num_attention_heads (" + std::to_string(t.num_attention_heads) + ")",
          std::to_string(t.num_key_value_heads));
  const std::int64_t sections = t.mrope_section[0] + t.mrope_section[1] + t.mrope_section[2];
  require(sections == t.head_dim / 2 && t.mrope_section[0] >= 0 && t.mrope_section[1] >= 0 &&
              t.mrope_section[2] >= 0,
          "text_config.rope_parameters.mrope_section",
          "three non-negative counts summing to head_dim / 2 = " + std::to_string(t.head_dim / 2),
          std::to_string(t.mrope_section[0]) + ", " + std::to_string(t.mrope_section[1]) + ", " +
              std::to_string(t.mrope_section[2]));
  require(t.rope_theta > 0, "text_config.rope_theta", "a positive number", std::to_string(t.rope_theta));
  require(t.rope_type == "default", "text_config.rope_parameters.rope_type", "default", t.rope_type,
          ErrorKind::unsupported);
  require(t.hidden_act == "silu", "text_config.hidden_act", "silu", t.hidden_act, ErrorKind::unsupported);
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  require(taps <= t.num_hidden_layers, "vision_config.deepstack_visual_indexes",
          "at most num_hidden_layers (" + std::to_string(t.num_hidden_layers) + ") taps",
          std::to_string(taps));
}

std::int64_t decoder_embeds_width(const ModelConfig& config, DeepstackInput deepstack) {
  const auto taps = static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  return config.text.hidden_size * (deepstack == DeepstackInput::packed ? 1 + taps : 1);
}

void write_decoder_graph(Graph& g, WeightReader& w, const ModelConfig& config,
                         const DecoderGraphOptions& options) {
  validate_decoder_config(config);
  const TextConfig& t = config.text;
  const std::int64_t taps = options.deepstack == DeepstackInput::none
                                ? 0
                                : static_cast<std::int64_t>(config.vision.deepstack_visual_indexes.size());
  const Shape hidden_shape{"batch_size", "sequence_length", decoder_embeds_width(config, options.deepstack)};
  const std::int64_t cache_width = kv_cache_width(options.kv_cache, t.head_dim);
  const Shape past_shape{"batch_size", t.num_key_value_heads, "past_sequence_length", cache_width};
  const Shape present_shape{"batch_size", t.num_key_value_heads, "total_sequence_length", cache_width};

  Value x = g.input(io::kDecoderInputsEmbeds, DType::f32, hidden_shape);
  Value position_ids = g.input(io::kDecoderPositionIds, DType::i64, {3, "batch_size", "sequence_length"});
  Value attention_mask = g.input(io::kDecoderAttentionMask, DType::i64, {"batch_size", "total_sequence_length"});
  Value deepstack;
  if (taps > 0 && options.deepstack == DeepstackInput::separate) {
    deepstack = g.input(io::kDecoderDeepstackEmbeds, DType::f32,
                        {taps, "batch_size", "sequence_length", t.hidden_size});
  }
  // Columns [H * first, H * (first + 1)) of the packed inputs_embeds.
  const Value packed_embeds = x;
  auto packed_columns = [&](std::int64_t first) {
    return g.op("Slice", {packed_embeds, g.constant_i64({t.hidden_size * first}), g.constant_i64({t.hidden_size * (first + 1)}),
                          g.constant_i64({-1})});
  };
  auto deepstack_tap = [&](std::int64_t i) {
    return options.deepstack == DeepstackInput::packed
               ? packed_columns(1 + i)
               : g.op("Gather", {deepstack, g.constant_i64({i}, {})}, {{"axis", 0}});
  };
  std::vector<std::pair<Value, Value>> past;
  for (std::int64_t i = 0; i < t.num_hidden_layers; ++i) {
    Value key = g.input(io::past_key_name(i), options.kv_cache, past_shape);  // key before value, in order
    Value value = g.input(io::past_value_name(i), options.kv_cache, past_shape);
    past.emplace_back(key, value);
  }

  // GQA's lengths, from the mask: seqlens_k = sum(mask) - 1, total = mask width.
  Value seqlens_k, total_length;
  {
    auto scope = g.scope("model.language_model.attention_lengths");
    Value valid = g.op("ReduceSum", {attention_mask, g.constant_i64({1})}, {{"keepdims", 0}});
    seqlens_k = g.op("Cast", {g.op("Sub", {valid, g.constant_i64({1}, {})})}, {{"to", 6}});
    Value width = g.op("Gather", {g.op("Shape", {attention_mask}), g.constant_i64({1}, {})}, {{"axis", 0}});
    total_length = g.op("Cast", {width}, {{"to", 6}});
  }
  // RotaryEmbedding's positions are needed only by layers without the fused prologue.
  bool unfused_layers = false;
  for (std::int64_t i = 0; i < t.num_hidden_layers; ++i) {
    unfused_layers = unfused_layers || !uses_q3vl_ops(layer_formats(options, i, t.num_hidden_layers).q, options.fuse_q3vl_ops);
  }
  const TextRotaryTables rotary = write_text_rotary(g, position_ids, t, unfused_layers);
  const LayerContext ctx{t, rotary, seqlens_k, total_length, options.fuse_q3vl_ops, options.kv_cache};

  std::vector<std::pair<Value, Value>> present;
  {
    auto scope = g.scope(kPrefix);
    if (options.deepstack == DeepstackInput::packed) {
      auto columns = g.scope("embeds");
      x = packed_columns(0);
    }
    Residual stream{x, Value{}};
    for (std::int64_t i = 0; i < t.num_hidden_layers; ++i) {
      LayerOutput layer = write_decoder_layer(g, w, stream, i, past[i].first, past[i].second, ctx,
                                              layer_formats(options, i, t.num_hidden_layers),
                                              options.expose_router_logits);
      stream = layer.residual;
      present.emplace_back(layer.present_key, layer.present_value);
      // DeepStack (HF _deepstack_process): the k-th visual feature is added after layer k,
      // here to the pending delta: (h + mlp) + ds becomes h + (mlp + ds), same up to rounding.
      if (i < taps) {
        auto ds = g.scope("deepstack." + std::to_string(i));
        stream.delta = g.op("Add", {stream.delta, deepstack_tap(i)});
      }
    }
    if (options.logits == LogitsMode::last) {  // only the last position reaches the norm
      auto last = [&g](const Value& v) {
        return g.op("Slice", {v, g.constant_i64({-1}),
                              g.constant_i64({std::numeric_limits<std::int64_t>::max()}), g.constant_i64({1})});
      };
      stream = {last(stream.x), last(stream.delta)};
    }
    x = write_add_rms_norm(g, w, stream, "norm", t.hidden_size, t.rms_norm_eps).normed;
  }
  // lm_head: tied checkpoints reuse the embedding table ([vocab, hidden] either way).
  Value logits;
  {
    auto scope = g.scope("lm_head");
    const std::string source = config.tie_word_embeddings ? std::string(kPrefix) + ".embed_tokens.weight"
                                                          : "lm_head.weight";
    auto weight = w.f32(source, {t.vocab_size, t.hidden_size});
    logits = linear(g, x, std::move(weight), t.vocab_size, t.hidden_size,
                    resolve_format(options.layers, options.recipe, "lm_head", kNoLayer, t.num_hidden_layers));
  }
  const Dim logits_len = options.logits == LogitsMode::last ? Dim(1) : Dim("sequence_length");
  g.output(logits, io::kDecoderLogits, DType::f32, {"batch_size", logits_len, t.vocab_size});
  for (std::int64_t i = 0; i < t.num_hidden_layers; ++i) {
    g.output(present[i].first, io::present_key_name(i), options.kv_cache, present_shape);
    g.output(present[i].second, io::present_value_name(i), options.kv_cache, present_shape);
  }
}

}  // namespace q3vl::builder
