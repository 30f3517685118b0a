// q3vl.QkNormRope: Qwen3's attention prologue on the packed q/k/v projection, in one node.
//
// For each token r (rows of the flattened [B, T]) and each head vector x of head_dim = d
// values in qkv[r] = [q heads (num_heads) | k heads (kv_num_heads) | v heads (kv_num_heads)]:
//   q and k heads:  n = w * x / sqrt(mean(x^2) + eps)          (w = q_norm or k_norm weight [d])
//                   out[j]       = n[j] * cos[r, j] - n[j + d/2] * sin[r, j]    j < d/2
//                   out[j + d/2] = n[j + d/2] * cos[r, j] + n[j] * sin[r, j]    (rotate-half RoPE)
//   v heads:        copied unchanged.
// That is HF Qwen3VLTextAttention's q_norm / k_norm followed by apply_rotary_pos_emb with
// the per-token MRoPE tables (builder/text_rotary.h makes cos / sin [B*T, d/2] from the
// three position rows), i.e. what the unfused graph does with Split, 4 Reshape, 2
// SimplifiedLayerNormalization and 2 RotaryEmbedding nodes per layer. One node instead of
// nine: a decode step of the 4B model runs 288 fewer nodes (see
// bench/kernels/results/2026-12-05-4b-decode-profile.md).
//
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

inline constexpr const char* kQkNormRopeOp = "QkNormRope";

struct QkNormRopeShape {
  std::int64_t num_heads = 0;
  std::int64_t kv_num_heads = 0;
  std::int64_t head_dim = 0;  // even
  float epsilon = 1e-6f;

  std::int64_t q_width() const { return num_heads * head_dim; }
  std::int64_t kv_width() const { return kv_num_heads * head_dim; }
  std::int64_t qkv_width() const { return q_width() + 2 * kv_width(); }
};

// Throws q3vl::Error(usage) naming `where` unless the head counts are positive and
// head_dim is positive and even and epsilon >= 0.
void validate(const QkNormRopeShape& shape, const char* where);

struct QkNormRopeArgs {
  QkNormRopeShape shape;
  const float* qkv = nullptr;     // [tokens, qkv_width]
  const float* q_norm = nullptr;  // [head_dim]
  const float* k_norm = nullptr;  // [head_dim]
  const float* cos = nullptr;     // [tokens, head_dim / 2]
  const float* sin = nullptr;     // [tokens, head_dim / 2]
  float* q = nullptr;             // [tokens, q_width]
  float* k = nullptr;             // [tokens, kv_width]
  float* v = nullptr;             // [tokens, kv_width]
};

// The math above for `tokens` rows, spread over `parallel`. Never throws.
void qk_norm_rope(const QkNormRopeArgs& args, std::int64_t tokens, const Parallelism& parallel = {});

}  // namespace q3vl::kernels
