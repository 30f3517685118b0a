// Quantization recipes: which format each decoder linear gets, per tensor and layer.
//
// A recipe is a list of rules; the first rule that matches a (tensor, layer) decides its
// format, and a tensor no rule matches keeps the build's base format (--precision). The
// text form, what `q3vl build --quant-recipe` and `--fake-quant` take:
//
//   RECIPE  := PRESET | 'none' | RULE (';' RULE)*      none: no rules (--precision everywhere)
//   RULE    := TENSORS ['@' LAYERS] '=' FORMAT
//   TENSORS := NAME (',' NAME)*      q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
//                                    experts (a MoE block's experts) lm_head, or * (all of them)
//   LAYERS  := SET ('+' SET)*        all | first:N | last:N | more_bits | N (one layer index);
//                                    without '@': all. lm_head belongs to no layer, so only a
//                                    rule without a layer set (or @all) matches it.
//   FORMAT  := int4 | nl4 | int5 | int6 | int8 [':' BLOCK]   (BLOCK: a power of two >= 16;
//                                    default the build's --block-size)
//
// more_bits is llama.cpp's choice of layers for its extra-precision tensors (Q4_K_M's
// attn_v and ffn_down at Q6_K): the first and last eighth of the n layers and every third
// layer between, i < n/8 or i >= 7n/8 or (i - n/8) mod 3 = 2.
//
// Example: "lm_head=int6;v_proj,down_proj@more_bits=int6;*=nl4". Presets (named recipes)
// are listed by recipe_presets(). int4 is the uniform 4-bit grid, nl4 the non-uniform one
// (kernels/weight_grid.h), int5/int6/int8 uniform (builder/quantize.h).
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "builder/linear.h"
#include "q3vl/config.h"

namespace q3vl::builder {

struct LayerSet {
  enum class Kind { all, first, last, more_bits, index };
  Kind kind = Kind::all;
  std::int64_t n = 0;  // first / last: the count; index: the layer
  bool contains(std::int64_t layer, std::int64_t num_layers) const;
};

struct RecipeRule {
  std::vector<std::string> tensors;  // names as in the grammar; "*" = all
  std::vector<LayerSet> layers;      // empty = all layers (and lm_head)
  WeightPrecision precision = WeightPrecision::int4;
  std::int64_t block_size = 0;  // 0 = the build's
};

struct QuantRecipe {
  std::vector<RecipeRule> rules;
  bool empty() const { return rules.empty(); }
};

// llama.cpp's use_more_bits layers (see above).
bool more_bits_layer(std::int64_t layer, std::int64_t num_layers);

// The recipe text for "no rules": every linear keeps the build's base format.
inline constexpr std::string_view kNoRecipe = "none";
// The recipe `q3vl build --precision int4` uses on q3vl's kernels when none is given.
inline constexpr std::string_view kDefaultInt4Recipe = "q4km";

// Parses RECIPE (or a preset name). Throws q3vl::Error(usage) naming `flag`, the bad rule
// and what was expected.
QuantRecipe parse_quant_recipe(std::string_view text, std::string_view flag = "--quant-recipe");
// The canonical text of a recipe (presets expanded): what the manifest records.
std::string to_string(const QuantRecipe& recipe);
// Named recipes: (name, rules text).
const std::vector<std::pair<std::string, std::string>>& recipe_presets();

// The layer index lm_head is looked up with.
inline constexpr std::int64_t kNoLayer = -1;

// `base` with the format of the first rule matching (tensor, layer), or `base` itself.
LinearFormat resolve_format(const LinearFormat& base, const QuantRecipe& recipe, std::string_view tensor,
                            std::int64_t layer, std::int64_t num_layers);

// Bytes per weight a package of this recipe stores for the decoder's linear layers
// (q/k/v/o, the MLP or the experts, lm_head): per tensor bits/8 + 2/B (fp16 scale) + 1/B
// with zero points, weighted by its weight count from the config; fp32 4, fp16 2.
double recipe_bytes_per_weight(const LinearFormat& base, const QuantRecipe& recipe, const TextConfig& text);

}  // namespace q3vl::builder
