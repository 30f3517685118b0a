// `q3vl build --quant-recipe` / `--fake-quant` text (parse_quant_recipe, builder/quant_recipe.h):
// a flag's value, but one a user or a script writes, and the grammar is q3vl's own. Any
// rejection must be a q3vl::Error; an accepted recipe's canonical text (what q3vl.json
// records) must parse back to the same canonical text, and every (tensor, layer) lookup and
// the byte/weight estimate must work on it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "builder/quant_recipe.h"
#include "harness.h"

namespace {

// A dense 12-layer and a 6-layer MoE text config: more_bits, first:N/last:N and layer
// indices all land on real layers, and the "experts" tensor exists.
q3vl::TextConfig text_config(bool moe) {
  q3vl::TextConfig t;
  t.vocab_size = 1000;
  t.hidden_size = 64;
  t.intermediate_size = 128;
  t.num_hidden_layers = moe ? 6 : 12;
  t.num_attention_heads = 4;
  t.num_key_value_heads = 2;
  t.head_dim = 16;
  if (moe) {
    t.num_experts = 8;
    t.num_experts_per_tok = 2;
    t.moe_intermediate_size = 32;
    t.mlp_only_layers = {0};
  }
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace q3vl::builder;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  q3vl::fuzz::expect_clean([&] {
    const QuantRecipe recipe = parse_quant_recipe(text);
    const std::string canonical = to_string(recipe);
    QuantRecipe again;
    try {
      again = parse_quant_recipe(canonical.empty() ? std::string(kNoRecipe) : canonical);
    } catch (const q3vl::Error&) {
      q3vl::fuzz::require(false, "accepted: the canonical text parses");
    }
    q3vl::fuzz::require(to_string(again) == canonical && again.rules.size() == recipe.rules.size(),
                        "accepted: the canonical text round-trips");
    LinearFormat base;
    base.precision = WeightPrecision::int4;
    base.quant.block_size = 32;
    for (const bool moe : {false, true}) {
      const q3vl::TextConfig t = text_config(moe);
      for (std::string_view tensor : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                      "experts", "lm_head"}) {
        for (std::int64_t layer = kNoLayer; layer < t.num_hidden_layers; ++layer) {
          const LinearFormat f = resolve_format(base, recipe, tensor, layer, t.num_hidden_layers);
          q3vl::fuzz::require(f.quant.block_size >= 16, "accepted: every block size is at least 16");
        }
      }
      const double bytes = recipe_bytes_per_weight(base, recipe, t);
      q3vl::fuzz::require(std::isfinite(bytes) && bytes > 0.0 && bytes <= 4.0,
                          "accepted: byte/weight is finite, positive and at most fp32's");
    }
  });
  return 0;
}
