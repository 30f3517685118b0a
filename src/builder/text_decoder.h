// The text decoder graph (decoder.onnx): HF Qwen3VLTextModel + lm_head, written
// block by block from the checkpoint's `model.language_model.*` weights.
//
// IO names are in io/decoder_io.h (shared with the runtime):
//   inputs  inputs_embeds               f32 [batch_size, sequence_length, hidden_size]
//           position_ids                i64 [3, batch_size, sequence_length]   (T, H, W rows)
//           attention_mask              i64 [batch_size, total_sequence_length] (past + new; 1 = token)
//           deepstack_embeds            f32 [K, batch_size, sequence_length, hidden_size]
//                                       (only when K = len(deepstack_visual_indexes) > 0; zero at
//                                        non-visual positions, and all-zero [K, B, T, D] at decode)
//                                       (DeepstackInput::packed instead widens inputs_embeds to
//                                        hidden_size * (1 + K) and has no deepstack_embeds)
//           past_key_values.N.key/value f32 [batch_size, num_key_value_heads, past_sequence_length, head_dim]
//   outputs logits                      f32 [batch_size, 1 | sequence_length, vocab_size]
//           present.N.key/value         f32 [batch_size, num_key_value_heads, total_sequence_length, head_dim]
//
// Mixture-of-Experts configs (qwen3_vl_moe): the layers TextConfig::is_moe_layer names
// have the sparse MoE block of builder/text_moe.h instead of the dense MLP.
// Each layer stacks q/k/v and gate/up into one matmul each ("self_attn.qkv_proj",
// "mlp.gate_up_proj" initializers) when the recipe gives the parts one format (else one
// matmul per part, concatenated), and adds residuals inside
// com.microsoft.SkipSimplifiedLayerNormalization.
// Attention is com.microsoft.GroupQueryAttention (do_rotary = 0; MRoPE is applied before
// it). Binding the same buffer to past_key_values.N.* and present.N.* (shape
// [B, kv_heads, max_length, head_dim]) lets GQA append in place (docs/reference/onnxruntime.md); then
// present's sequence dim is the buffer's. Multi-token steps with a non-empty past need B = 1.
// With LogitsMode::last the logits are those of the last position of each row only, so a
// prefill of T tokens never materialises T x vocab floats (assumes no right padding).
#pragma once

#include <cstdint>

#include "builder/graph.h"
#include "builder/linear.h"
#include "builder/quant_recipe.h"
#include "builder/weight_reader.h"
#include "q3vl/config.h"

namespace q3vl::builder {

enum class LogitsMode {
  last,  // logits [B, 1, V] for the last position (packages)
  all,   // logits [B, T, V] (parity tests)
};

// Where the decoder's DeepStack features come from.
enum class DeepstackInput {
  separate,  // the deepstack_embeds input [K, B, T, H] (q3vl packages)
  packed,    // columns of a wider inputs_embeds [B, T, H * (1 + K)] = [embeds | tap 0 | ... | tap K-1]:
             // ONNX Runtime GenAI passes one embedding tensor only (builder/genai_package.h)
  none,      // DeepStack left out (GenAI packages built with --no-deepstack; differs from HF on images)
};

struct DecoderGraphOptions {
  LinearFormat layers;  // every linear (q/k/v/o, MLP or experts, lm_head) ...
  QuantRecipe recipe;   // ... unless a rule of the recipe gives it another precision / block size
  LogitsMode logits = LogitsMode::last;
  DeepstackInput deepstack = DeepstackInput::separate;
  // Test builds: also output each MoE block's router logits as
  // router_logits_name("model.language_model.layers.N.mlp") [B * T, num_experts].
  bool expose_router_logits = false;
  // Layers whose linears are q3vl ops (LinearKernels::q3vl, int4/int8) also get q3vl's
  // fused ops: q3vl.QkNormRope for q_norm + k_norm + MRoPE, q3vl.QuantSwiGLU for the
  // dense MLP's gate/up projections + SiLU + product. false = the standard subgraphs
  // everywhere (parity tests compare the two).
  bool fuse_q3vl_ops = true;
  // Element type of the past/present KV tensors: f32 or f16 (the attention reads and
  // writes the cache in this type; its inputs and output stay float32).
  DType kv_cache = DType::f32;
};

// Width of the decoder's inputs_embeds: hidden_size, or hidden_size * (1 + K) when packed.
std::int64_t decoder_embeds_width(const ModelConfig& config, DeepstackInput deepstack);

// Checks every text-config field the decoder math depends on. Throws q3vl::Error(config)
// naming config.json and the field (head_dim odd, heads not a multiple of kv heads,
// mrope_section not summing to head_dim/2, DeepStack taps more than layers, ...).
void validate_decoder_config(const ModelConfig& config);

// Writes the whole decoder into `g` (the caller saves it). Weights are read one at a
// time through `weights` (shape-checked) and streamed to g's weights file.
void write_decoder_graph(Graph& g, WeightReader& weights, const ModelConfig& config,
                         const DecoderGraphOptions& options);

}  // namespace q3vl::builder
