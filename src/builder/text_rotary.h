// Interleaved MRoPE tables for the text decoder, computed once per forward from
// position_ids and shared by every layer (HF Qwen3VLTextRotaryEmbedding +
// apply_interleaved_mrope, modeling_qwen3_vl.py).
//
//   inv_freq[j] = 1 / rope_theta^(2j / head_dim),            j in [0, head_dim/2)
//   axis(j)     = H if j % 3 == 1 and j < 3 * mrope_section[1]
//                 W if j % 3 == 2 and j < 3 * mrope_section[2]
//                 T otherwise
//   angle[b,t,j] = position_ids[axis(j), b, t] * inv_freq[j]       (float32)
//   cos/sin      = cos/sin(angle)   -> one row of head_dim/2 per token
//
// The rotation itself (pairs (i, i + head_dim/2), rotate-half) is done by
// com.microsoft.RotaryEmbedding with interleaved=0, fed these per-token rows as its
// "cache" and positions 0..B*T-1 as its position_ids.
#pragma once

#include <cstdint>
#include <vector>

#include "builder/graph.h"
#include "q3vl/config.h"

namespace q3vl::builder {

struct TextRotaryTables {
  Value cos;        // f32 [batch * sequence, head_dim / 2]
  Value sin;        // f32 [batch * sequence, head_dim / 2]
  Value positions;  // i64 [batch, sequence]: row index of each token in cos/sin (when asked for)
};

// inv_freq (float32, as HF computes it) and axis(j) (0 = T, 1 = H, 2 = W).
std::vector<float> mrope_inv_freq(const TextConfig& text);
std::vector<std::int64_t> mrope_slot_axes(const TextConfig& text);

// position_ids: i64 [3, batch, sequence]. Adds the table nodes in scope
// "model.language_model.rotary_emb"; `positions` only when `with_positions` (only
// apply_text_rotary reads them; q3vl.QkNormRope reads row r for token r directly).
TextRotaryTables write_text_rotary(Graph& g, const Value& position_ids, const TextConfig& text,
                                   bool with_positions = true);

// x: f32 [batch, sequence, heads * head_dim] -> same shape, rotated.
Value apply_text_rotary(Graph& g, const Value& x, const TextRotaryTables& tables);

}  // namespace q3vl::builder
