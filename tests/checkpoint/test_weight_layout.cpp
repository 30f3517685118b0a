// checkpoint/weight_layout.h and presets.h: every preset has exactly the tensors
// HF's Qwen3VLForConditionalGeneration expects, with the right shapes.
//
// Two independent references: (1) the key set and shapes re-derived below from
// the config, written from docs/reference/qwen3vl.md §10 as a per-module table;
// (2) parameter and tensor counts HF itself reported (Qwen3VLForConditionalGeneration, or
// Qwen3VLMoeForConditionalGeneration for the MoE presets, built on the meta device from
// each preset's config.json, transformers 5.23).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "checkpoint/presets.h"
#include "checkpoint/weight_layout.h"
#include "io/safetensors.h"
#include "made_checkpoint.h"
#include "q3vl/error.h"

namespace q3vl::checkpoint {
namespace {

using Shape = std::vector<std::int64_t>;

std::map<std::string, Shape> expected_tensors(const ModelConfig& c) {
  std::map<std::string, Shape> t;
  const auto& v = c.vision;
  const std::int64_t C = v.hidden_size;
  const std::int64_t merged = 4 * C;  // spatial_merge_size 2 in every preset
  const std::int64_t D = c.text.hidden_size;
  t["model.visual.patch_embed.proj.weight"] = {C, 3, 2, 16, 16};
  t["model.visual.patch_embed.proj.bias"] = {C};
  t["model.visual.pos_embed.weight"] = {v.num_position_embeddings, C};
  for (std::int64_t i = 0; i < v.depth; ++i) {
    const std::string p = "model.visual.blocks." + std::to_string(i) + ".";
    for (const char* norm : {"norm1", "norm2"}) {
      t[p + norm + ".weight"] = {C};
      t[p + norm + ".bias"] = {C};
    }
    t[p + "attn.qkv.weight"] = {3 * C, C};
    t[p + "attn.qkv.bias"] = {3 * C};
    t[p + "attn.proj.weight"] = {C, C};
    t[p + "attn.proj.bias"] = {C};
    t[p + "mlp.linear_fc1.weight"] = {v.intermediate_size, C};
    t[p + "mlp.linear_fc1.bias"] = {v.intermediate_size};
    t[p + "mlp.linear_fc2.weight"] = {C, v.intermediate_size};
    t[p + "mlp.linear_fc2.bias"] = {C};
  }
  auto merger = [&](const std::string& p, std::int64_t norm_width) {
    t[p + ".norm.weight"] = {norm_width};
    t[p + ".norm.bias"] = {norm_width};
    t[p + ".linear_fc1.weight"] = {merged, merged};
    t[p + ".linear_fc1.bias"] = {merged};
    t[p + ".linear_fc2.weight"] = {D, merged};
    t[p + ".linear_fc2.bias"] = {D};
  };
  merger("model.visual.merger", C);
  for (std::size_t k = 0; k < v.deepstack_visual_indexes.size(); ++k) {
    merger("model.visual.deepstack_merger_list." + std::to_string(k), merged);
  }
  const auto& x = c.text;
  t["model.language_model.embed_tokens.weight"] = {x.vocab_size, D};
  t["model.language_model.norm.weight"] = {D};
  for (std::int64_t i = 0; i < x.num_hidden_layers; ++i) {
    const std::string p = "model.language_model.layers." + std::to_string(i) + ".";
    t[p + "self_attn.q_proj.weight"] = {x.num_attention_heads * x.head_dim, D};
    t[p + "self_attn.k_proj.weight"] = {x.num_key_value_heads * x.head_dim, D};
    t[p + "self_attn.v_proj.weight"] = {x.num_key_value_heads * x.head_dim, D};
    t[p + "self_attn.o_proj.weight"] = {D, x.num_attention_heads * x.head_dim};
    t[p + "self_attn.q_norm.weight"] = {x.head_dim};
    t[p + "self_attn.k_norm.weight"] = {x.head_dim};
    if (x.is_moe_layer(i)) {  // Qwen3VLMoeTextSparseMoeBlock, the Hub's expert layout
      t[p + "mlp.gate.weight"] = {x.num_experts, D};
      t[p + "mlp.experts.gate_up_proj"] = {x.num_experts, D, 2 * x.moe_intermediate_size};
      t[p + "mlp.experts.down_proj"] = {x.num_experts, x.moe_intermediate_size, D};
    } else {
      t[p + "mlp.gate_proj.weight"] = {x.intermediate_size, D};
      t[p + "mlp.up_proj.weight"] = {x.intermediate_size, D};
      t[p + "mlp.down_proj.weight"] = {D, x.intermediate_size};
    }
    t[p + "input_layernorm.weight"] = {D};
    t[p + "post_attention_layernorm.weight"] = {D};
  }
  if (!c.tie_word_embeddings) t["lm_head.weight"] = {x.vocab_size, D};
  return t;
}

std::map<std::string, Shape> actual_tensors(const ModelConfig& c) {
  std::map<std::string, Shape> t;
  for (const auto& w : qwen3vl_weights(c)) {
    EXPECT_TRUE(t.emplace(w.name, w.shape).second) << "duplicate " << w.name;
  }
  return t;
}

struct HfCounts {
  const char* preset;
  std::int64_t parameters;  // sum of numel, tied lm_head counted once
  std::size_t tensors;      // state_dict keys stored in the checkpoint
};

TEST(WeightLayout, PresetsMatchTheModuleTreeAndHfCounts) {
  const HfCounts counts[] = {
      {"tiny", 10'619'200, 110},
      {"tiny-untied", 30'111'136, 128},
      {"2b", 2'127'532'032, 625},
      {"4b", 4'437'815'808, 713},
      {"tiny-moe", 30'309'280, 128},
      {"30b-a3b", 31'070'754'032, 882},
      {"235b-a22b", 235'670'022'896, 1388},
  };
  for (const auto& count : counts) {
    SCOPED_TRACE(count.preset);
    const ModelConfig config = preset_config(count.preset);
    EXPECT_EQ(actual_tensors(config), expected_tensors(config));
    std::int64_t parameters = 0;
    const auto weights = qwen3vl_weights(config);
    for (const auto& w : weights) parameters += w.numel();
    EXPECT_EQ(parameters, count.parameters);
    EXPECT_EQ(weights.size(), count.tensors);
  }
}

TEST(WeightLayout, InitialisationScalesFollowTheDocumentedRules) {
  const ModelConfig config = preset_config("tiny-untied");
  std::map<std::string, WeightSpec> by_name;
  for (const auto& w : qwen3vl_weights(config)) by_name[w.name] = w;
  auto expect = [&](const std::string& name, Init init, double std) {
    SCOPED_TRACE(name);
    ASSERT_EQ(by_name.count(name), 1u);
    EXPECT_EQ(by_name[name].init, init);
    EXPECT_DOUBLE_EQ(by_name[name].std, std);
  };
  expect("model.language_model.embed_tokens.weight", Init::normal, 0.4);
  expect("lm_head.weight", Init::normal, 0.4);
  expect("model.visual.pos_embed.weight", Init::normal, 0.4);
  expect("model.visual.patch_embed.proj.weight", Init::normal, 1.0 / std::sqrt(1536.0));
  expect("model.visual.patch_embed.proj.bias", Init::normal, 0.1);
  expect("model.visual.blocks.2.attn.qkv.weight", Init::normal, 1.0 / std::sqrt(48.0));
  expect("model.visual.blocks.2.attn.proj.weight", Init::normal, 0.5 / std::sqrt(48.0));
  expect("model.visual.blocks.2.mlp.linear_fc2.weight", Init::normal, 0.5 / std::sqrt(96.0));
  expect("model.visual.deepstack_merger_list.1.linear_fc2.weight", Init::normal, 1.0 / std::sqrt(192.0));
  expect("model.visual.blocks.4.norm2.bias", Init::normal, 0.1);
  expect("model.visual.blocks.4.norm2.weight", Init::one_plus, 0.1);
  // tiny-untied has 4 text layers: layer 0's down_proj is the token map, layer 3's o_proj
  // the context read, the other branch outputs are small.
  expect("model.language_model.layers.1.self_attn.q_proj.weight", Init::normal, 1.0 / std::sqrt(96.0));
  expect("model.language_model.layers.1.mlp.gate_proj.weight", Init::normal, 1.0 / std::sqrt(96.0));
  expect("model.language_model.layers.0.mlp.down_proj.weight", Init::normal, 2.0 / std::sqrt(256.0));
  expect("model.language_model.layers.1.mlp.down_proj.weight", Init::normal, 0.1 / std::sqrt(256.0));
  expect("model.language_model.layers.3.mlp.down_proj.weight", Init::normal, 0.1 / std::sqrt(256.0));
  expect("model.language_model.layers.0.self_attn.o_proj.weight", Init::normal, 0.1 / std::sqrt(192.0));
  expect("model.language_model.layers.3.self_attn.o_proj.weight", Init::normal, 0.7 / std::sqrt(192.0));
  expect("model.language_model.layers.3.self_attn.k_norm.weight", Init::one_plus, 0.1);
  expect("model.language_model.norm.weight", Init::normal, 1.0);
}

// MoE: the router and the experts follow the dense rules of their layer (gate/up gain 1,
// down_proj gain 2 in layer 0, 0.1 elsewhere) and the router gain 4; the dense
// mlp_only_layers layer keeps gate/up/down_proj.
TEST(WeightLayout, MoeScalesAndTheTransformers5Layout) {
  const ModelConfig config = preset_config("tiny-moe");
  EXPECT_TRUE(config.is_moe());
  EXPECT_NE(config.text.hidden_size, config.text.moe_intermediate_size);
  EXPECT_NE(config.text.hidden_size, 2 * config.text.moe_intermediate_size);
  for (const auto layout : {ExpertLayout::hub, ExpertLayout::transformers5}) {
    const bool hub = layout == ExpertLayout::hub;
    std::map<std::string, WeightSpec> by_name;
    for (const auto& w : qwen3vl_weights(config, layout)) by_name[w.name] = w;
    auto expect = [&](const std::string& name, Shape shape, double std, bool transposed) {
      SCOPED_TRACE(name);
      ASSERT_EQ(by_name.count(name), 1u);
      EXPECT_EQ(by_name[name].shape, shape);
      EXPECT_EQ(by_name[name].init, Init::normal);
      EXPECT_DOUBLE_EQ(by_name[name].std, std);
      EXPECT_EQ(by_name[name].transposed, transposed);
    };
    const std::string l0 = "model.language_model.layers.0.mlp.", l1 = "model.language_model.layers.1.mlp.";
    expect(l0 + "gate.weight", {16, 96}, 4.0 / std::sqrt(96.0), false);
    expect(l0 + "experts.gate_up_proj", hub ? Shape{16, 96, 64} : Shape{16, 64, 96}, 1.0 / std::sqrt(96.0), !hub);
    expect(l0 + "experts.down_proj", hub ? Shape{16, 32, 96} : Shape{16, 96, 32}, 2.0 / std::sqrt(32.0), !hub);
    expect(l1 + "experts.down_proj", hub ? Shape{16, 32, 96} : Shape{16, 96, 32}, 0.1 / std::sqrt(32.0), !hub);
    expect("model.language_model.layers.2.mlp.down_proj.weight", {96, 160}, 0.1 / std::sqrt(160.0), false);
    EXPECT_EQ(by_name.count("model.language_model.layers.2.mlp.gate.weight"), 0u);
  }
}

TEST(WeightLayout, TinyPresetsDifferWhereTheyShould) {
  const ModelConfig tiny = preset_config("tiny");
  const ModelConfig untied = preset_config("tiny-untied");
  EXPECT_TRUE(tiny.tie_word_embeddings);
  EXPECT_FALSE(untied.tie_word_embeddings);
  EXPECT_NE(tiny.text.num_attention_heads / tiny.text.num_key_value_heads,
            untied.text.num_attention_heads / untied.text.num_key_value_heads);
  EXPECT_NE(tiny.text.hidden_size, untied.text.hidden_size);
  EXPECT_NE(tiny.vision.hidden_size, untied.vision.hidden_size);
  EXPECT_NE(tiny.text.num_hidden_layers, untied.text.num_hidden_layers);
  EXPECT_NE(tiny.vision.depth, untied.vision.depth);
  EXPECT_NE(tiny.vision.deepstack_visual_indexes, untied.vision.deepstack_visual_indexes);
  for (const auto* c : {&tiny, &untied}) {
    EXPECT_EQ(c->text.vocab_size, 151936);
    EXPECT_GE(c->text.num_hidden_layers, 2);
    EXPECT_GE(c->vision.depth, 3);
    EXPECT_FALSE(c->vision.deepstack_visual_indexes.empty());
    for (const auto section : c->text.mrope_section) EXPECT_GT(section, 0);
  }
}

TEST(WeightLayout, UnknownPresetIsAUsageErrorListingTheKnownOnes) {
  try {
    preset_config("tiny2");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::usage);
    EXPECT_STREQ(e.what(), "--preset: expected one of tiny, tiny-untied, tiny-moe, 2b, 4b, 30b-a3b, 235b-a22b, got \"tiny2\"");
  }
}

// Written checkpoints hold exactly these tensors, as bf16, and their config.json
// reads back as the preset.
TEST(WeightLayout, WrittenCheckpointsHoldTheLayout) {
  for (const char* preset : {"tiny", "tiny-untied", "tiny-moe"}) {
    SCOPED_TRACE(preset);
    const auto checkpoint = io::Checkpoint::open(testing_support::made_checkpoint(preset));
    const auto expected = expected_tensors(preset_config(preset));
    std::set<std::string> names;
    for (const auto& name : checkpoint.names()) {
      names.insert(name);
      const auto view = checkpoint.tensor(name);
      EXPECT_EQ(view.dtype, io::DType::bf16) << name;
      ASSERT_EQ(expected.count(name), 1u) << "unexpected " << name;
      EXPECT_EQ(view.shape, expected.at(name)) << name;
    }
    EXPECT_EQ(names.size(), expected.size());
    EXPECT_EQ(load_model_config(testing_support::made_checkpoint(preset)), preset_config(preset));
  }
}

}  // namespace
}  // namespace q3vl::checkpoint
