#include "checkpoint/weight_layout.h"

#include <cmath>

namespace q3vl::checkpoint {
namespace {

constexpr double kEmbeddingStd = 0.4;
constexpr double kBiasStd = 0.1;
constexpr double kNormStd = 0.1;

// Gains g of the weight matrices, std = g / sqrt(fan_in) (see the header for why).
constexpr double kInputGain = 1.0;           // q/k/v, gate/up, vision qkv/fc1, mergers, patch embed
constexpr double kTextBranchGain = 0.1;      // o_proj, down_proj: small residual updates
constexpr double kTokenMapGain = 2.0;        // layer 0 down_proj: the non-symmetric token map
constexpr double kContextReadGain = 0.7;     // last layer o_proj: what the context contributes
constexpr double kVisionBranchGain = 0.5;    // vision attn.proj, mlp.linear_fc2
// MoE router: logits of std ~4 over the experts, so the k-th and (k+1)-th largest are
// well apart and a top-k set does not flip on rounding (margins measured on the golden
// cases: tests/reference/README.md).
constexpr double kRouterGain = 4.0;

class LayoutBuilder {
 public:
  // nn.Linear(in, out[, bias]) stored as weight [out, in] (+ bias [out]).
  void linear(const std::string& prefix, std::int64_t in, std::int64_t out, bool bias,
              double gain = kInputGain) {
    add(prefix + ".weight", {out, in}, Init::normal, gain / std::sqrt(static_cast<double>(in)));
    if (bias) add(prefix + ".bias", {out}, Init::normal, kBiasStd);
  }
  // nn.LayerNorm(width): weight + bias. RMSNorm: weight only.
  void layer_norm(const std::string& prefix, std::int64_t width) {
    add(prefix + ".weight", {width}, Init::one_plus, kNormStd);
    add(prefix + ".bias", {width}, Init::normal, kBiasStd);
  }
  void rms_norm(const std::string& prefix, std::int64_t width) {
    add(prefix + ".weight", {width}, Init::one_plus, kNormStd);
  }
  void add(std::string name, std::vector<std::int64_t> shape, Init init, double std,
           bool transposed = false) {
    specs_.push_back({std::move(name), std::move(shape), init, std, transposed});
  }
  std::vector<WeightSpec> take() { return std::move(specs_); }

 private:
  std::vector<WeightSpec> specs_;
};

// Qwen3VLVisionPatchMerger: LayerNorm (over C, or over 4C after the shuffle for
// DeepStack mergers), Linear(4C -> 4C), GELU, Linear(4C -> out_hidden_size).
void patch_merger(LayoutBuilder& b, const std::string& prefix, const VisionConfig& v,
                  bool postshuffle_norm) {
  const std::int64_t merged = v.hidden_size * v.spatial_merge_size * v.spatial_merge_size;
  b.layer_norm(prefix + ".norm", postshuffle_norm ? merged : v.hidden_size);
  b.linear(prefix + ".linear_fc1", merged, merged, true);
  b.linear(prefix + ".linear_fc2", merged, v.out_hidden_size, true);
}

void vision_tower(LayoutBuilder& b, const VisionConfig& v) {
  const std::string root = "model.visual";
  // Conv3d(in_channels -> C, kernel = stride = (temporal, patch, patch), bias).
  const std::int64_t fan_in = v.patch_input_size();
  b.add(root + ".patch_embed.proj.weight",
        {v.hidden_size, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size},
        Init::normal, kInputGain / std::sqrt(static_cast<double>(fan_in)));
  b.add(root + ".patch_embed.proj.bias", {v.hidden_size}, Init::normal, kBiasStd);
  b.add(root + ".pos_embed.weight", {v.num_position_embeddings, v.hidden_size}, Init::normal,
        kEmbeddingStd);
  for (std::int64_t i = 0; i < v.depth; ++i) {
    const std::string block = root + ".blocks." + std::to_string(i);
    b.layer_norm(block + ".norm1", v.hidden_size);
    b.layer_norm(block + ".norm2", v.hidden_size);
    b.linear(block + ".attn.qkv", v.hidden_size, 3 * v.hidden_size, true);
    b.linear(block + ".attn.proj", v.hidden_size, v.hidden_size, true, kVisionBranchGain);
    b.linear(block + ".mlp.linear_fc1", v.hidden_size, v.intermediate_size, true);
    b.linear(block + ".mlp.linear_fc2", v.intermediate_size, v.hidden_size, true, kVisionBranchGain);
  }
  patch_merger(b, root + ".merger", v, false);
  for (std::size_t k = 0; k < v.deepstack_visual_indexes.size(); ++k) {
    patch_merger(b, root + ".deepstack_merger_list." + std::to_string(k), v, true);
  }
}

// Qwen3VLMoeTextSparseMoeBlock: router gate.weight [E, H]; experts.gate_up_proj and
// experts.down_proj, drawn in the Hub's [E, H, 2I] / [E, I, H] and stored in `layout`.
void sparse_moe_block(LayoutBuilder& b, const std::string& prefix, const TextConfig& t,
                      double down_gain, ExpertLayout layout) {
  const std::int64_t E = t.num_experts;
  const std::int64_t H = t.hidden_size;
  const std::int64_t I = t.moe_intermediate_size;
  const bool hub = layout == ExpertLayout::hub;
  b.add(prefix + ".gate.weight", {E, H}, Init::normal, kRouterGain / std::sqrt(static_cast<double>(H)));
  b.add(prefix + ".experts.gate_up_proj", hub ? std::vector<std::int64_t>{E, H, 2 * I} : std::vector<std::int64_t>{E, 2 * I, H},
        Init::normal, kInputGain / std::sqrt(static_cast<double>(H)), !hub);
  b.add(prefix + ".experts.down_proj", hub ? std::vector<std::int64_t>{E, I, H} : std::vector<std::int64_t>{E, H, I},
        Init::normal, down_gain / std::sqrt(static_cast<double>(I)), !hub);
}

void language_model(LayoutBuilder& b, const TextConfig& t, ExpertLayout experts) {
  const std::string root = "model.language_model";
  b.add(root + ".embed_tokens.weight", {t.vocab_size, t.hidden_size}, Init::normal,
        kEmbeddingStd);
  const std::int64_t q_width = t.num_attention_heads * t.head_dim;
  const std::int64_t kv_width = t.num_key_value_heads * t.head_dim;
  const std::int64_t last = t.num_hidden_layers - 1;
  for (std::int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const std::string layer = root + ".layers." + std::to_string(i);
    const double o_gain = i == last ? kContextReadGain : kTextBranchGain;
    const double down_gain = i == 0 ? kTokenMapGain : kTextBranchGain;
    b.linear(layer + ".self_attn.q_proj", t.hidden_size, q_width, false);
    b.linear(layer + ".self_attn.k_proj", t.hidden_size, kv_width, false);
    b.linear(layer + ".self_attn.v_proj", t.hidden_size, kv_width, false);
    b.linear(layer + ".self_attn.o_proj", q_width, t.hidden_size, false, o_gain);
    b.rms_norm(layer + ".self_attn.q_norm", t.head_dim);
    b.rms_norm(layer + ".self_attn.k_norm", t.head_dim);
    if (t.is_moe_layer(i)) {
      sparse_moe_block(b, layer + ".mlp", t, down_gain, experts);
    } else {
      b.linear(layer + ".mlp.gate_proj", t.hidden_size, t.intermediate_size, false);
      b.linear(layer + ".mlp.up_proj", t.hidden_size, t.intermediate_size, false);
      b.linear(layer + ".mlp.down_proj", t.intermediate_size, t.hidden_size, false, down_gain);
    }
    b.rms_norm(layer + ".input_layernorm", t.hidden_size);
    b.rms_norm(layer + ".post_attention_layernorm", t.hidden_size);
  }
  // Zero-mean final norm: with norm weights near 1 a tied lm_head scores the current
  // token's own embedding highest and greedy decoding repeats it.
  b.add(root + ".norm.weight", {t.hidden_size}, Init::normal, 1.0);
}

}  // namespace

std::int64_t WeightSpec::numel() const {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

std::vector<WeightSpec> qwen3vl_weights(const ModelConfig& config, ExpertLayout experts) {
  LayoutBuilder b;
  vision_tower(b, config.vision);
  language_model(b, config.text, experts);
  if (!config.tie_word_embeddings) {
    b.add("lm_head.weight", {config.text.vocab_size, config.text.hidden_size}, Init::normal,
          kEmbeddingStd);
  }
  return b.take();
}

}  // namespace q3vl::checkpoint
