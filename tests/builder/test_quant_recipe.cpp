// Quantization recipes (builder/quant_recipe.h): the rule language, llama.cpp's more_bits
// layers, first-match resolution, presets, bytes per weight against a hand count on the
// 4b dimensions, and errors naming the flag and the bad part.
#include <gtest/gtest.h>

#include "builder/quant_recipe.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

TEST(QuantRecipe, MoreBitsLayersOf36) {
  // n = 36: n/8 = 4 and 7n/8 = 31 (integer division), so layers 0-3 and 31-35, and between
  // them i with (i - 4) % 3 == 2: 6, 9, ..., 30 (18 layers: what llama.cpp gives attn_v and
  // ffn_down Q6_K in Q4_K_M).
  const std::vector<std::int64_t> expected = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35};
  std::vector<std::int64_t> got;
  for (std::int64_t i = 0; i < 36; ++i) {
    if (more_bits_layer(i, 36)) got.push_back(i);
  }
  EXPECT_EQ(got, expected);
  // n = 4 (tiny): n/8 = 0 and 7n/8 = 3: layer 2 ((2 - 0) % 3 == 2) and layer 3.
  got.clear();
  for (std::int64_t i = 0; i < 4; ++i) {
    if (more_bits_layer(i, 4)) got.push_back(i);
  }
  EXPECT_EQ(got, (std::vector<std::int64_t>{2, 3}));
}

TEST(QuantRecipe, FirstMatchingRuleDecides) {
  const QuantRecipe r = parse_quant_recipe(" lm_head=int6 ; v_proj, down_proj@more_bits=int6;q_proj@first:2+last:1+5=int8:128;*=nl4;");
  ASSERT_EQ(r.rules.size(), 4u);
  LinearFormat base;
  base.precision = WeightPrecision::int4;
  base.quant.block_size = 32;
  auto at = [&](const char* tensor, std::int64_t layer) { return resolve_format(base, r, tensor, layer, 36); };
  EXPECT_EQ(at("lm_head", kNoLayer).precision, WeightPrecision::int6);
  EXPECT_EQ(at("v_proj", 6).precision, WeightPrecision::int6);
  EXPECT_EQ(at("v_proj", 7).precision, WeightPrecision::nl4);
  EXPECT_EQ(at("down_proj", 35).precision, WeightPrecision::int6);
  EXPECT_EQ(at("up_proj", 35).precision, WeightPrecision::nl4);
  for (std::int64_t layer : {0, 1, 5, 35}) {
    EXPECT_EQ(at("q_proj", layer).precision, WeightPrecision::int8) << layer;
    EXPECT_EQ(at("q_proj", layer).quant.block_size, 128) << layer;
  }
  EXPECT_EQ(at("q_proj", 2).precision, WeightPrecision::nl4);
  EXPECT_EQ(at("q_proj", 2).quant.block_size, 32);
  // No rule for a tensor: the base format.
  const QuantRecipe only_head = parse_quant_recipe("lm_head=int8");
  EXPECT_EQ(resolve_format(base, only_head, "o_proj", 3, 36).precision, WeightPrecision::int4);
  // A layer set never matches lm_head, except all.
  EXPECT_EQ(resolve_format(base, parse_quant_recipe("*@first:40=int8"), "lm_head", kNoLayer, 36).precision,
            WeightPrecision::int4);
  EXPECT_EQ(resolve_format(base, parse_quant_recipe("*@all=int8"), "lm_head", kNoLayer, 36).precision,
            WeightPrecision::int8);
}

TEST(QuantRecipe, CanonicalTextAndPresets) {
  EXPECT_EQ(to_string(parse_quant_recipe(" lm_head=int6 ; v_proj, down_proj@more_bits=int6;*=nl4;")),
            "lm_head=int6;v_proj,down_proj@more_bits=int6;*=nl4");
  EXPECT_EQ(to_string(parse_quant_recipe("q_proj@first:2+last:1+5=int8:128")), "q_proj@first:2+last:1+5=int8:128");
  ASSERT_FALSE(recipe_presets().empty());
  for (const auto& [name, rules] : recipe_presets()) {
    EXPECT_EQ(to_string(parse_quant_recipe(name)), to_string(parse_quant_recipe(rules))) << name;
  }
}

TextConfig config_4b() {
  TextConfig t;
  t.vocab_size = 151936;
  t.hidden_size = 2560;
  t.intermediate_size = 9728;
  t.num_hidden_layers = 36;
  t.num_attention_heads = 32;
  t.num_key_value_heads = 8;
  t.head_dim = 128;
  return t;
}

TEST(QuantRecipe, BytesPerWeightOn4b) {
  // Per layer: q, o 4096 x 2560 = 10,485,760; k, v 1024 x 2560 = 2,621,440; gate, up, down
  // 9728 x 2560 = 24,903,680; lm_head 151,936 x 2560 = 388,956,160; total 4,022,272,000.
  const double total = 4022272000.0, head = 388956160.0, v = 2621440.0, down = 24903680.0;
  LinearFormat base;
  base.precision = WeightPrecision::int4;
  base.quant.block_size = 32;
  const TextConfig t = config_4b();
  // int4 / nl4 block 32: 0.5 + 2/32; int5 0.625 + 0.0625; int6 0.75 + 0.0625; int8 1 + 0.0625.
  EXPECT_DOUBLE_EQ(recipe_bytes_per_weight(base, {}, t), 0.5625);
  EXPECT_DOUBLE_EQ(recipe_bytes_per_weight(base, parse_quant_recipe("*=nl4"), t), 0.5625);
  EXPECT_NEAR(recipe_bytes_per_weight(base, parse_quant_recipe("lm_head=int8"), t), 0.5625 + 0.5 * head / total, 1e-12);
  // q4km: lm_head, and v and down in the 18 more_bits layers, at int6 (+0.25 each).
  const double q4km = 0.5625 + 0.25 * (head + 18 * (v + down)) / total;
  EXPECT_NEAR(recipe_bytes_per_weight(base, parse_quant_recipe("q4km"), t), q4km, 1e-12);
  EXPECT_NEAR(q4km, 0.61747, 1e-5);  // under Q4_K_M's 0.6192
  // Block 128 for lm_head at int8: 1 + 2/128; asymmetric adds 1/B.
  EXPECT_NEAR(recipe_bytes_per_weight(base, parse_quant_recipe("lm_head=int8:128"), t),
              (0.5625 * (total - head) + (1 + 2.0 / 128) * head) / total, 1e-12);
  base.quant.symmetric = false;
  EXPECT_DOUBLE_EQ(recipe_bytes_per_weight(base, {}, t), 0.5625 + 1.0 / 32);
}

TEST(QuantRecipe, ErrorsNameTheFlagAndTheBadPart) {
  struct Case {
    const char* text;
    const char* got;
  };
  const Case cases[] = {{"lm_head", "lm_head"},       {"lm_head=int3", "int3"},        {"o_prj=int8", "o_prj"},
                        {"*@middle=int8", "middle"},  {"*@first:x=int8", "first:x"},   {"*=int8:48", "48"},
                        {"", ""}};
  for (const Case& c : cases) {
    try {
      parse_quant_recipe(c.text, "--fake-quant");
      ADD_FAILURE() << c.text;
    } catch (const Error& e) {
      EXPECT_EQ(e.info().kind, ErrorKind::usage) << c.text;
      EXPECT_EQ(e.info().field, "--fake-quant") << c.text;
      EXPECT_EQ(e.info().got, c.got) << c.text;
    }
  }
}

}  // namespace
}  // namespace q3vl::builder
