// q3vl.Bf16Attention: o = softmax(scale · q k^T) v for every batch entry and head, with
// q, k, v and the softmax weights rounded to bf16 and the scores, the softmax and the sums
// in float32. Non-causal, no mask: each batch entry attends within itself. It is the
// vision encoder's attention (batch = image segment), where the two products are most of
// the encoder's arithmetic at large images (L² · hidden per layer) and bf16 runs them at
// twice fp32's rate (bf16_linear.h says where and why).
//
// ---- The math, per batch entry b, head h, query i (d = head_dim, L keys) --------------
//     s_j  = Σ_c bf16(q_ic) · bf16(k_jc)                       (float sums, exact products)
//     e_j  = exp(scale · s_j − max_j scale · s_j),   Z = Σ_j e_j   (float)
//     o_ic = (Σ_j bf16(e_j) · bf16(v_jc)) / Z
// The products run on bf16_linear's panel kernels: keys are the "weight rows" of the
// first product (N = L, K = d) and v^T those of the second (N = d, K = L), packed per
// (b, h) into bf16_linear.h's pair layout once per call.
//
// Layout: q, k, v and o are float32 [B, L, num_heads · head_dim], head h at columns
// h · head_dim .. (h + 1) · head_dim − 1 (com.microsoft.MultiHeadAttention's 3-D form).
//
// Thread-safety: a pure function of its arguments.
#pragma once

#include <cstdint>

#include "kernels/quant_linear.h"  // Parallelism

namespace q3vl::kernels {

inline constexpr const char* kBf16AttentionOp = "Bf16Attention";

struct Bf16AttentionShape {
  std::int64_t num_heads = 0;
  std::int64_t head_dim = 0;  // even
  float scale = 0.0f;         // usually 1 / sqrt(head_dim)
};

// Throws q3vl::Error(usage) naming `where` unless num_heads > 0, head_dim > 0 and even,
// and scale is finite and positive.
void validate(const Bf16AttentionShape& shape, const char* where);

struct Bf16AttentionArgs {
  Bf16AttentionShape shape;
  std::int64_t batch = 0;
  std::int64_t length = 0;  // L: queries = keys per batch entry
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
};

// Runs on bf16_linear.h's active_bf16_path(). Preconditions: validate(args.shape); each
// of q, k, v, out holds batch · length · num_heads · head_dim floats. Never throws
// (scratch allocation failure aside).
void bf16_attention(const Bf16AttentionArgs& args, const Parallelism& parallel = {});

}  // namespace q3vl::kernels
