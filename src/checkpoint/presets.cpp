#include "checkpoint/presets.h"

#include "q3vl/error.h"

namespace q3vl::checkpoint {
namespace {

// Settings every Qwen3-VL size shares (configuration values in docs/reference/qwen3vl.md §1).
ModelConfig qwen3vl_base() {
  ModelConfig c;
  c.text.vocab_size = 151936;
  c.text.max_position_embeddings = 262144;
  c.text.rms_norm_eps = 1e-6;
  c.text.rope_theta = 5000000.0;
  c.text.rope_type = "default";
  c.text.mrope_interleaved = true;
  c.text.hidden_act = "silu";
  c.vision.in_channels = 3;
  c.vision.patch_size = 16;
  c.vision.temporal_patch_size = 2;
  c.vision.spatial_merge_size = 2;
  c.vision.num_position_embeddings = 2304;
  c.vision.hidden_act = "gelu_pytorch_tanh";
  c.vision.rope_theta = 10000.0;
  return c;
}

// head_dim 32 -> 16 rotary slots split [6, 5, 5], so T, H and W all get frequencies.
// q_proj width (4 * 32 = 128) differs from hidden_size (64), as in the 4B model.
// The taps include the last vision block, whose output also feeds the final merger.
ModelConfig tiny() {
  ModelConfig c = qwen3vl_base();
  c.text.hidden_size = 64;
  c.text.intermediate_size = 192;
  c.text.num_hidden_layers = 3;
  c.text.num_attention_heads = 4;
  c.text.num_key_value_heads = 2;
  c.text.head_dim = 32;
  c.text.mrope_section = {6, 5, 5};
  c.vision.depth = 4;
  c.vision.hidden_size = 64;
  c.vision.intermediate_size = 128;
  c.vision.num_heads = 4;
  c.vision.out_hidden_size = 64;
  c.vision.deepstack_visual_indexes = {0, 1, 3};
  c.tie_word_embeddings = true;
  return c;
}

// GQA ratio 3 (tiny: 2), two DeepStack taps (tiny: three), mrope_section [8, 4, 4].
ModelConfig tiny_untied() {
  ModelConfig c = qwen3vl_base();
  c.text.hidden_size = 96;
  c.text.intermediate_size = 256;
  c.text.num_hidden_layers = 4;
  c.text.num_attention_heads = 6;
  c.text.num_key_value_heads = 2;
  c.text.head_dim = 32;
  c.text.mrope_section = {8, 4, 4};
  c.vision.depth = 5;
  c.vision.hidden_size = 48;
  c.vision.intermediate_size = 96;
  c.vision.num_heads = 3;
  c.vision.out_hidden_size = 96;
  c.vision.deepstack_visual_indexes = {1, 3};
  c.tie_word_embeddings = false;
  return c;
}

// Mixture of Experts, HF-instantiable and small: 16 experts, top-4, hidden 96 and expert
// width 32, so neither H = 2I nor H = I and the two expert layouts ([E, H, 2I] vs
// [E, 2I, H]) are told apart by shape. Layer 2 is a dense mlp_only_layers MLP; layer 0
// stays sparse (its experts carry the token map, see weight_layout.h). Two DeepStack taps.
ModelConfig tiny_moe() {
  ModelConfig c = tiny_untied();
  c.model_type = "qwen3_vl_moe";
  c.text.intermediate_size = 160;
  c.text.num_experts = 16;
  c.text.num_experts_per_tok = 4;
  c.text.moe_intermediate_size = 32;
  c.text.decoder_sparse_step = 1;
  c.text.mlp_only_layers = {2};
  return c;
}

// Qwen3-VL-30B-A3B / 235B-A22B (issue #18's measured facts): 128 experts, top-8, every
// layer sparse, untied, GQA with 4 kv heads; the vision tower of width 1152, depth 27.
ModelConfig real_moe(std::int64_t hidden, std::int64_t layers, std::int64_t heads,
                     std::int64_t intermediate, std::int64_t moe_intermediate) {
  ModelConfig c = qwen3vl_base();
  c.model_type = "qwen3_vl_moe";
  c.text.hidden_size = hidden;
  c.text.intermediate_size = intermediate;
  c.text.num_hidden_layers = layers;
  c.text.num_attention_heads = heads;
  c.text.num_key_value_heads = 4;
  c.text.head_dim = 128;
  c.text.mrope_section = {24, 20, 20};
  c.text.num_experts = 128;
  c.text.num_experts_per_tok = 8;
  c.text.moe_intermediate_size = moe_intermediate;
  c.vision.depth = 27;
  c.vision.hidden_size = 1152;
  c.vision.intermediate_size = 4304;
  c.vision.num_heads = 16;
  c.vision.out_hidden_size = hidden;
  c.vision.deepstack_visual_indexes = {8, 16, 24};
  c.tie_word_embeddings = false;
  return c;
}

// Qwen3-VL-2B-Instruct and -4B-Instruct share the vision tower.
ModelConfig real_size(std::int64_t hidden, std::int64_t intermediate, std::int64_t layers,
                      std::int64_t heads) {
  ModelConfig c = qwen3vl_base();
  c.text.hidden_size = hidden;
  c.text.intermediate_size = intermediate;
  c.text.num_hidden_layers = layers;
  c.text.num_attention_heads = heads;
  c.text.num_key_value_heads = 8;
  c.text.head_dim = 128;
  c.text.mrope_section = {24, 20, 20};
  c.vision.depth = 24;
  c.vision.hidden_size = 1024;
  c.vision.intermediate_size = 4096;
  c.vision.num_heads = 16;
  c.vision.out_hidden_size = hidden;
  c.vision.deepstack_visual_indexes = {5, 11, 17};
  c.tie_word_embeddings = true;
  return c;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"tiny", "tiny-untied", "tiny-moe", "2b", "4b", "30b-a3b", "235b-a22b"};
}

ModelConfig preset_config(std::string_view name) {
  ModelConfig config;
  if (name == "tiny") {
    config = tiny();
  } else if (name == "tiny-untied") {
    config = tiny_untied();
  } else if (name == "tiny-moe") {
    config = tiny_moe();
  } else if (name == "30b-a3b") {
    config = real_moe(2048, 48, 32, 6144, 768);
  } else if (name == "235b-a22b") {
    config = real_moe(4096, 94, 64, 12288, 1536);
  } else if (name == "2b") {
    config = real_size(2048, 6144, 28, 16);
  } else if (name == "4b") {
    config = real_size(2560, 9728, 36, 32);
  } else {
    std::string known;
    for (const auto& preset : preset_names()) known += (known.empty() ? "" : ", ") + preset;
    throw_error(ErrorKind::usage, "", "--preset", "one of " + known,
                "\"" + std::string(name) + "\"");
  }
  validate_model_config(config, "preset " + std::string(name));
  return config;
}

}  // namespace q3vl::checkpoint
