// The tensors of a Qwen3VLForConditionalGeneration checkpoint: Hugging Face key
// names and shapes (modeling_qwen3_vl.py module tree; docs/reference/qwen3vl.md §10),
// each with the random distribution make-checkpoint draws it from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "q3vl/config.h"

namespace q3vl::checkpoint {

// How a tensor's values are drawn. HF's own init (std 0.02, unit norms) makes greedy
// decoding collapse to one repeated token (docs/reference/hf-reference-facts.md), and the
// gain-3 scales that fix that make the network chaotic: a 1 % error in layer 0 grows
// through every later layer, so no quantized build can stay close to FP32. The rule in
// qwen3vl_weights keeps the network tame and still gives varied, input-dependent output.
enum class Init {
  normal,       // mean 0, standard deviation `std`
  one_plus,     // 1 + (mean 0, standard deviation `std`): norm weights
};

// How a MoE checkpoint stores its fused expert tensors (HF Qwen3VLMoeTextExperts).
enum class ExpertLayout {
  hub,            // the Hub's files: gate_up_proj [E, H, 2I] (gate = first I columns), down_proj [E, I, H]
  transformers5,  // what transformers 5.x save_pretrained writes: [E, 2I, H] and [E, H, I]
};

struct WeightSpec {
  std::string name;                 // HF key, e.g. "model.language_model.layers.0.mlp.up_proj.weight"
  std::vector<std::int64_t> shape;  // PyTorch order ([out, in] for nn.Linear)
  Init init = Init::normal;
  double std = 0.0;
  // A 3-D expert tensor whose values are drawn in the Hub's order [E, B, A] and stored
  // transposed per expert as `shape` = [E, A, B]: both expert layouts then hold the same
  // model, and HF computes the same outputs from either.
  bool transposed = false;

  std::int64_t numel() const;
};

// Every tensor HF's Qwen3VLForConditionalGeneration loads for `config`, in module
// order: model.visual.*, model.language_model.*, then lm_head.weight unless
// tie_word_embeddings (HF ties it to model.language_model.embed_tokens.weight).
//   embeddings, lm_head, vision pos_embed: N(0, 0.4^2); biases: N(0, 0.1^2);
//   norm weights: 1 + N(0, 0.1^2), except the text model's final norm: N(0, 1);
//   weight matrices (and the patch_embed conv): N(0, (g / sqrt(fan_in))^2) with gain g
//     1    for every matrix that reads a normalised input (q/k/v, gate/up, vision qkv and
//          linear_fc1, the mergers, the patch embedding);
//     0.5  for the vision blocks' residual outputs (attn.proj, mlp.linear_fc2);
//     0.1  for the text layers' residual outputs (o_proj, down_proj), except
//     2    for layer 0's down_proj: a strong non-linear token map, so that a tied lm_head
//          does not score y after x as high as x after y (greedy would fall into x, y, x, y);
//     0.7  for the last layer's o_proj: what the prompt and the image contribute to the
//          next token.
//   The zero-mean final norm keeps a tied lm_head from scoring the current token highest.
// Measured with HF on the golden cases (tests/reference): no greedy collapse in 32 steps
// on tiny, tiny-untied and the custom config, top logits 15-25, INT8 cosine 0.9999.
// MoE layers (config.text.is_moe_layer) have, instead of gate/up/down_proj, the router
// mlp.gate.weight [E, H] with gain kRouterGain (sharp routing: top-k sets far from ties,
// see the constant) and the fused mlp.experts.gate_up_proj / down_proj (no .weight
// suffix) in `experts`' layout, drawn like the dense gate/up and down_proj of that layer.
// Precondition: `config` is valid (validate_model_config).
std::vector<WeightSpec> qwen3vl_weights(const ModelConfig& config,
                                        ExpertLayout experts = ExpertLayout::hub);

}  // namespace q3vl::checkpoint
