#include "builder/text_rotary.h"

#include <cmath>

namespace q3vl::builder {

std::vector<float> mrope_inv_freq(const TextConfig& text) {
  const std::int64_t half = text.head_dim / 2;
  std::vector<float> inv_freq(static_cast<std::size_t>(half));
  const float base = static_cast<float>(text.rope_theta);
  for (std::int64_t j = 0; j < half; ++j) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)) in float32.
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(text.head_dim);
    inv_freq[j] = 1.0f / std::pow(base, exponent);
  }
  return inv_freq;
}

std::vector<std::int64_t> mrope_slot_axes(const TextConfig& text) {
  const std::int64_t half = text.head_dim / 2;
  std::vector<std::int64_t> axes(static_cast<std::size_t>(half), 0);
  for (std::int64_t j = 0; j < half; ++j) {
    if (j % 3 == 1 && j < 3 * text.mrope_section[1]) axes[j] = 1;
    else if (j % 3 == 2 && j < 3 * text.mrope_section[2]) axes[j] = 2;
  }
  return axes;
}

TextRotaryTables write_text_rotary(Graph& g, const Value& position_ids, const TextConfig& text,
                                   bool with_positions) {
  // angle: [batch, sequence, head_dim/2] = position_ids[axis(j)] * inv_freq[j]
  auto scope = g.scope("model.language_model.rotary_emb");
  const std::int64_t half = text.head_dim / 2;
  const auto inv_freq = mrope_inv_freq(text);
  Value inv_freq_v = g.initializer_f32(g.scoped("inv_freq"), {half}, inv_freq);
  Value slot_axes = g.initializer_i64(g.scoped("slot_axes"), {half}, mrope_slot_axes(text));

  Value positions_f = g.op("Cast", {position_ids}, {{"to", 1}});                   // [3, B, T]
  Value per_slot = g.op("Gather", {positions_f, slot_axes}, {{"axis", 0}});         // [half, B, T]
  per_slot = g.op("Transpose", {per_slot}, {{"perm", std::vector<std::int64_t>{1, 2, 0}}});  // [B, T, half]
  Value angle = g.op("Mul", {per_slot, inv_freq_v});
  Value rows = g.constant_i64({-1, half});
  TextRotaryTables tables;
  tables.cos = g.op("Reshape", {g.op("Cos", {angle}), rows});
  tables.sin = g.op("Reshape", {g.op("Sin", {angle}), rows});
  if (!with_positions) return tables;

  // positions[b, t] = b * T + t: each token reads its own row of the tables.
  Value count = g.op("Div", {g.op("Size", {position_ids}), g.constant_i64({3}, {})});
  Value flat = g.op("Range", {g.constant_i64({0}, {}), count, g.constant_i64({1}, {})});
  Value batch_seq = g.op("Slice", {g.op("Shape", {position_ids}), g.constant_i64({1}), g.constant_i64({3})});
  tables.positions = g.op("Reshape", {flat, batch_seq});
  return tables;
}

Value apply_text_rotary(Graph& g, const Value& x, const TextRotaryTables& tables) {
  return g.op("com.microsoft.RotaryEmbedding", {x, tables.positions, tables.cos, tables.sin},
              {{"interleaved", 0}});
}

}  // namespace q3vl::builder
