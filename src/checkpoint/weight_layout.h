// The tensors of a Qwen3VLForConditionalGeneration checkpoint: Hugging Face key
// names and shapes (modeling_qwen3_vl.py module tree; shared/spec/qwen3vl.md §10),
// each with the random distribution make-checkpoint draws it from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "q3vl/config.h"

namespace q3vl::checkpoint {

// How a tensor's values are drawn. Scales follow shared/spec/hf-reference-facts.md
// "Random weights that behave": HF's own init (std 0.02, unit norms) makes greedy
// decoding collapse to one repeated token.
enum class Init {
  normal,       // mean 0, standard deviation `std`
  one_plus,     // 1 + (mean 0, standard deviation `std`): norm weights
};

struct WeightSpec {
  std::string name;                 // HF key, e.g. "model.language_model.layers.0.mlp.up_proj.weight"
  std::vector<std::int64_t> shape;  // PyTorch order ([out, in] for nn.Linear)
  Init init = Init::normal;
  double std = 0.0;

  std::int64_t numel() const;
};

// Every tensor HF's Qwen3VLForConditionalGeneration loads for `config`, in module
// order: model.visual.*, model.language_model.*, then lm_head.weight unless
// tie_word_embeddings (HF ties it to model.language_model.embed_tokens.weight).
//   embeddings, lm_head, vision pos_embed: N(0, 0.4^2)
//   other weight matrices (and the patch_embed conv): N(0, (3 / sqrt(fan_in))^2)
//   biases: N(0, 0.1^2); norm weights: 1 + N(0, 0.1^2)
// Precondition: `config` is valid (validate_model_config).
std::vector<WeightSpec> qwen3vl_weights(const ModelConfig& config);

}  // namespace q3vl::checkpoint
