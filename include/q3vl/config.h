// ModelConfig: what q3vl needs to know about a Qwen3-VL checkpoint, read from
// its config.json. Field names are Hugging Face's (configuration_qwen3_vl.py),
// so `text.num_key_value_heads` here is `text_config.num_key_value_heads` there.
//
// Both config layouts are accepted:
//   - the Hub's (transformers 4.57): text_config.rope_theta + text_config.rope_scaling
//     {rope_type, mrope_section, mrope_interleaved}
//   - transformers 5.x: text_config.rope_parameters {rope_theta, rope_type,
//     mrope_section, mrope_interleaved}, vision_config.rope_parameters
// Every field the model math depends on is validated; a missing or invalid one
// throws q3vl::Error naming the file and dotted field path. model_type is `qwen3_vl`
// (dense) or `qwen3_vl_moe` (Mixture of Experts); anything else is an error.
//
// Mixture of Experts (model_type `qwen3_vl_moe`, text_config model_type
// `qwen3_vl_moe_text`; transformers' configuration_qwen3_vl_moe.py): text_config adds
// num_experts (transformers 5.x saves it as num_local_experts; either is read, both
// must then agree), num_experts_per_tok and moe_intermediate_size, all required (HF's
// defaults 60 / 4 / 1408 describe no Qwen3-VL checkpoint), and decoder_sparse_step
// (default 1) and mlp_only_layers (default []) as HF defaults them. Layer i is a
// sparse MoE block when i is not in mlp_only_layers and (i + 1) % decoder_sparse_step
// == 0, else a dense MLP of intermediate_size. norm_topk_prob is ignored: HF's
// Qwen3-VL-MoE router always renormalises the top-k probabilities, whatever it says.
//
// Missing fields: HF's Qwen3VL*Config classes default every field, but their size
// defaults describe no shipped checkpoint (vision out_hidden_size 3584 vs text
// hidden_size 4096), so q3vl requires every size, text rope_theta (HF's fallback
// 500000 is not Qwen3-VL's 5000000), head_dim and deepstack_visual_indexes. Fields
// whose HF default is the value every Qwen3-VL uses are defaulted like HF:
// num_key_value_heads (= num_attention_heads), rms_norm_eps, hidden_act,
// attention_bias, rope_type, mrope_section ([24, 20, 20]), vision in_channels,
// patch_size, temporal_patch_size, spatial_merge_size, num_position_embeddings,
// vision rope_theta, the token ids and tie_word_embeddings (false). HF reads
// tie_word_embeddings from the top level only (text_config's copy is ignored).
//
// Thread-safety: plain values; safe to share read-only.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace q3vl {

struct TextConfig {
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;  // explicit in Qwen3 configs; NOT hidden_size / heads
  std::int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 0.0;
  std::string rope_type = "default";
  // Rotary frequency slots per axis (T, H, W); they sum to head_dim / 2.
  std::array<std::int64_t, 3> mrope_section{};
  // Recorded as written; HF's Qwen3-VL rotary code interleaves regardless.
  bool mrope_interleaved = true;
  std::string hidden_act = "silu";
  bool attention_bias = false;

  // Mixture of Experts; num_experts == 0 for the dense models (all other fields unused).
  std::int64_t num_experts = 0;
  std::int64_t num_experts_per_tok = 0;    // top-k
  std::int64_t moe_intermediate_size = 0;  // I of each expert
  std::int64_t decoder_sparse_step = 1;
  std::vector<std::int64_t> mlp_only_layers;  // dense layers (intermediate_size)

  // Whether text layer `layer` is a sparse MoE block (HF Qwen3VLMoeTextDecoderLayer's rule).
  bool is_moe_layer(std::int64_t layer) const;

  bool operator==(const TextConfig&) const = default;
};

struct VisionConfig {
  std::int64_t depth = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_heads = 0;
  std::int64_t in_channels = 3;
  std::int64_t patch_size = 0;
  std::int64_t temporal_patch_size = 0;
  std::int64_t spatial_merge_size = 0;
  std::int64_t out_hidden_size = 0;          // = text hidden_size
  std::int64_t num_position_embeddings = 0;  // a perfect square (48 * 48 = 2304)
  std::string hidden_act = "gelu_pytorch_tanh";
  double rope_theta = 10000.0;
  // Vision block indices whose outputs feed the DeepStack mergers, in order;
  // the k-th listed feature is added after text layer k.
  std::vector<std::int64_t> deepstack_visual_indexes;

  std::int64_t head_dim() const { return hidden_size / num_heads; }
  // Width of one pixel_values row: in_channels * temporal_patch_size * patch_size^2.
  std::int64_t patch_input_size() const {
    return in_channels * temporal_patch_size * patch_size * patch_size;
  }

  bool operator==(const VisionConfig&) const = default;
};

enum class ConfigLayout {
  rope_scaling,     // the Hub's files (transformers 4.57)
  rope_parameters,  // what transformers 5.x save_pretrained writes
};

struct ModelConfig {
  std::string model_type = "qwen3_vl";
  TextConfig text;
  VisionConfig vision;
  std::int64_t image_token_id = 151655;
  std::int64_t video_token_id = 151656;
  std::int64_t vision_start_token_id = 151652;
  std::int64_t vision_end_token_id = 151653;
  bool tie_word_embeddings = false;
  ConfigLayout layout = ConfigLayout::rope_scaling;  // the layout the file was read from

  bool is_moe() const { return model_type == "qwen3_vl_moe"; }

  bool operator==(const ModelConfig&) const = default;
};

// Checks every relation the model math relies on (positive sizes, heads dividing,
// mrope_section summing to head_dim / 2, DeepStack taps inside the vision depth,
// out_hidden_size == text hidden_size, ...). parse_model_config calls it; call it
// directly for a config built in code. Throws q3vl::Error(config or unsupported)
// naming `file` and the dotted config.json field.
void validate_model_config(const ModelConfig& config, const std::string& file = "config.json");

// Parses and validates config.json text. `file` is only used in error messages.
// Throws q3vl::Error (format: bad JSON; config: missing/invalid field;
// unsupported: a value q3vl does not implement, e.g. hidden_act).
ModelConfig parse_model_config(std::string_view json_text, const std::string& file = "config.json");

// Reads and parses a config.json file (or DIR/config.json when given a directory).
ModelConfig load_model_config(const std::filesystem::path& path);

// Serialises a config as Hugging Face would write config.json in the given layout
// (2-space indent, HF's key names). Deterministic: same config, same bytes. A MoE
// config names its expert count num_experts in the Hub's layout (rope_scaling) and
// num_local_experts in transformers 5.x's (rope_parameters), as each writes it.
std::string to_config_json(const ModelConfig& config,
                           ConfigLayout layout = ConfigLayout::rope_scaling);

}  // namespace q3vl
