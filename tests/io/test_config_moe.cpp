// q3vl/config.h for Mixture-of-Experts Qwen3-VL (model_type qwen3_vl_moe): the expert
// fields in both layouts (num_experts / num_local_experts), HF's rule for which layers
// are sparse, round trips, and one error per MoE validation rule naming the field.
//
// kHub30BA3B holds the Qwen3-VL-30B-A3B-Instruct dimensions (issue #18's measured facts:
// hidden 2048, 48 layers, 32/4 heads, head_dim 128, 128 experts, top-8,
// moe_intermediate 768, untied; vision depth 27, width 1152, DeepStack [8, 16, 24]) in
// the Hub's (transformers 4.57) layout.
#include <gtest/gtest.h>

#include <functional>

#include "io/json_file.h"
#include "q3vl/config.h"
#include "q3vl/error.h"
#include "support/error_message.h"

namespace q3vl {
namespace {

using io::Json;

constexpr const char* kHub30BA3B = R"({
  "architectures": ["Qwen3VLMoeForConditionalGeneration"],
  "image_token_id": 151655,
  "model_type": "qwen3_vl_moe",
  "text_config": {
    "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 151643,
    "decoder_sparse_step": 1, "dtype": "bfloat16", "eos_token_id": 151645, "head_dim": 128,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 6144, "max_position_embeddings": 262144, "mlp_only_layers": [],
    "model_type": "qwen3_vl_moe_text", "moe_intermediate_size": 768, "norm_topk_prob": true,
    "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 48, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_scaling": {"mrope_interleaved": true, "mrope_section": [24, 20, 20], "rope_type": "default"},
    "rope_theta": 5000000, "tie_word_embeddings": false, "use_cache": true, "vocab_size": 151936
  },
  "tie_word_embeddings": false,
  "transformers_version": "4.57.0",
  "video_token_id": 151656,
  "vision_config": {
    "deepstack_visual_indexes": [8, 16, 24], "depth": 27, "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 1152, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 4304,
    "model_type": "qwen3_vl_moe", "num_heads": 16, "num_position_embeddings": 2304,
    "out_hidden_size": 2048, "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2
  },
  "vision_end_token_id": 151653,
  "vision_start_token_id": 151652
})";

Json hub() { return Json::parse(kHub30BA3B); }
ModelConfig parse(const Json& json) { return parse_model_config(json.dump(), "config.json"); }

using q3vl::testing::error_message;

TEST(ConfigMoe, HubLayoutParsesTo30BA3B) {
  const ModelConfig c = parse_model_config(kHub30BA3B, "config.json");
  EXPECT_TRUE(c.is_moe());
  EXPECT_EQ(c.model_type, "qwen3_vl_moe");
  EXPECT_EQ(c.text.hidden_size, 2048);
  EXPECT_EQ(c.text.intermediate_size, 6144);
  EXPECT_EQ(c.text.num_hidden_layers, 48);
  EXPECT_EQ(c.text.num_attention_heads, 32);
  EXPECT_EQ(c.text.num_key_value_heads, 4);
  EXPECT_EQ(c.text.num_experts, 128);
  EXPECT_EQ(c.text.num_experts_per_tok, 8);
  EXPECT_EQ(c.text.moe_intermediate_size, 768);
  EXPECT_EQ(c.text.decoder_sparse_step, 1);
  EXPECT_TRUE(c.text.mlp_only_layers.empty());
  EXPECT_EQ(c.vision.depth, 27);
  EXPECT_EQ(c.vision.deepstack_visual_indexes, (std::vector<std::int64_t>{8, 16, 24}));
  EXPECT_FALSE(c.tie_word_embeddings);
  for (std::int64_t i = 0; i < 48; ++i) EXPECT_TRUE(c.text.is_moe_layer(i)) << i;
}

// HF Qwen3VLMoeTextDecoderLayer: sparse iff i not in mlp_only_layers and (i + 1) % step == 0.
TEST(ConfigMoe, SparseLayersFollowHfRule) {
  Json j = hub();
  j["text_config"]["decoder_sparse_step"] = 3;
  j["text_config"]["mlp_only_layers"] = {5, 0};
  const ModelConfig c = parse(j);
  std::vector<std::int64_t> sparse;
  for (std::int64_t i = 0; i < 12; ++i) {
    if (c.text.is_moe_layer(i)) sparse.push_back(i);
  }
  EXPECT_EQ(sparse, (std::vector<std::int64_t>{2, 8, 11}));
  // A dense config has no sparse layer.
  TextConfig dense = c.text;
  dense.num_experts = 0;
  EXPECT_FALSE(dense.is_moe_layer(2));
}

// transformers 5.x writes num_local_experts (and no norm_topk_prob); both name the same count.
TEST(ConfigMoe, ReadsNumLocalExpertsAndIgnoresNormTopkProb) {
  Json j = hub();
  j["text_config"].erase("num_experts");
  j["text_config"]["num_local_experts"] = 64;
  j["text_config"]["norm_topk_prob"] = false;  // HF's Qwen3-VL-MoE router renormalises anyway
  EXPECT_EQ(parse(j).text.num_experts, 64);
  j["text_config"]["num_experts"] = 64;
  EXPECT_EQ(parse(j).text.num_experts, 64);
  // Optional fields default like HF.
  j = hub();
  j["text_config"].erase("decoder_sparse_step");
  j["text_config"].erase("mlp_only_layers");
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.text.decoder_sparse_step, 1);
  EXPECT_TRUE(c.text.mlp_only_layers.empty());
}

TEST(ConfigMoe, RoundTripsThroughBothLayouts) {
  ModelConfig c = parse_model_config(kHub30BA3B, "config.json");
  c.text.decoder_sparse_step = 2;
  c.text.mlp_only_layers = {3, 1};
  c.text.num_experts = 60;
  c.text.num_experts_per_tok = 6;
  c.text.moe_intermediate_size = 100;
  for (const auto layout : {ConfigLayout::rope_scaling, ConfigLayout::rope_parameters}) {
    const std::string text = to_config_json(c, layout);
    const Json written = Json::parse(text);
    EXPECT_EQ(written["architectures"][0], "Qwen3VLMoeForConditionalGeneration");
    EXPECT_EQ(written["text_config"]["model_type"], "qwen3_vl_moe_text");
    const bool v5 = layout == ConfigLayout::rope_parameters;
    EXPECT_EQ(written["text_config"].contains("num_local_experts"), v5) << text;
    EXPECT_EQ(written["text_config"].contains("num_experts"), !v5) << text;
    EXPECT_EQ(written["vision_config"]["model_type"], v5 ? "qwen3_vl_moe_vision" : "qwen3_vl_moe");
    ModelConfig back = parse_model_config(text, "config.json");
    ModelConfig expected = c;
    expected.layout = layout;
    if (!v5) expected.vision.rope_theta = 10000.0;
    EXPECT_EQ(back, expected) << text;
  }
  // The Hub layout written back is the Hub file itself (apart from the version string).
  Json written = Json::parse(to_config_json(parse_model_config(kHub30BA3B, "config.json")));
  EXPECT_EQ(written, hub()) << written.dump(2);
}

struct BadCase {
  const char* what;
  std::function<void(Json&)> edit;
  const char* message;
};

TEST(ConfigMoe, EveryValidationFailureNamesTheField) {
  const BadCase cases[] = {
      {"no expert count", [](Json& j) { j["text_config"].erase("num_experts"); },
       "config.json: text_config.num_experts: expected integer (or num_local_experts), got missing"},
      {"counts differ", [](Json& j) { j["text_config"]["num_local_experts"] = 64; },
       "config.json: text_config.num_local_experts: expected num_experts (128), got 64"},
      {"zero experts", [](Json& j) { j["text_config"]["num_experts"] = 0; },
       "config.json: text_config.num_experts: expected positive integer, got 0"},
      {"no top-k", [](Json& j) { j["text_config"].erase("num_experts_per_tok"); },
       "config.json: text_config.num_experts_per_tok: expected integer, got missing"},
      {"top-k too large", [](Json& j) { j["text_config"]["num_experts_per_tok"] = 129; },
       "config.json: text_config.num_experts_per_tok: expected an integer in [1, num_experts = 128], got 129"},
      {"top-k zero", [](Json& j) { j["text_config"]["num_experts_per_tok"] = 0; },
       "config.json: text_config.num_experts_per_tok: expected an integer in [1, num_experts = 128], got 0"},
      {"no expert width", [](Json& j) { j["text_config"].erase("moe_intermediate_size"); },
       "config.json: text_config.moe_intermediate_size: expected integer, got missing"},
      {"expert width", [](Json& j) { j["text_config"]["moe_intermediate_size"] = -768; },
       "config.json: text_config.moe_intermediate_size: expected positive integer, got -768"},
      {"sparse step", [](Json& j) { j["text_config"]["decoder_sparse_step"] = 0; },
       "config.json: text_config.decoder_sparse_step: expected positive integer, got 0"},
      {"dense layer range", [](Json& j) { j["text_config"]["mlp_only_layers"] = {0, 48}; },
       "config.json: text_config.mlp_only_layers[1]: expected a layer index in [0, num_hidden_layers = 48), got 48"},
      {"dense layer type", [](Json& j) { j["text_config"]["mlp_only_layers"] = "0"; },
       "config.json: text_config.mlp_only_layers: expected array of integers, got \"0\""},
  };
  for (const auto& bad : cases) {
    Json j = hub();
    bad.edit(j);
    EXPECT_EQ(error_message(ErrorKind::config, [&] { parse(j); }), bad.message) << bad.what;
  }
  // The 5.x layout names its own key.
  Json j = hub();
  j["text_config"].erase("num_experts");
  j["text_config"]["num_local_experts"] = 0;
  j["text_config"]["rope_parameters"] = j["text_config"]["rope_scaling"];
  j["text_config"]["rope_parameters"]["rope_theta"] = 5000000;
  j["text_config"].erase("rope_scaling");
  EXPECT_EQ(error_message(ErrorKind::config, [&] { parse(j); }),
            "config.json: text_config.num_local_experts: expected positive integer, got 0");
}

// A config built in code with experts but the dense model_type is refused.
TEST(ConfigMoe, DenseModelTypeWithExpertsIsRefused) {
  ModelConfig c = parse_model_config(kHub30BA3B, "config.json");
  c.model_type = "qwen3_vl";
  EXPECT_EQ(error_message(ErrorKind::config, [&] { validate_model_config(c); }),
            "config.json: text_config.num_experts: expected absent (0) for model_type \"qwen3_vl\", got 128");
}

}  // namespace
}  // namespace q3vl
