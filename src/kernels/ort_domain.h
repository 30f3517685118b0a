// The ONNX Runtime custom-op domain "q3vl": q3vl.QuantLinear and q3vl.QuantSwiGLU
// (quant_linear.h), q3vl.Bf16Linear (bf16_linear.h), q3vl.Bf16Attention
// (bf16_attention.h), q3vl.QkNormRope (qk_norm_rope.h), q3vl.KvAttention and
// q3vl.KvAttentionInt8 (kv_attention.h) and q3vl.MoE (moe.h) as nodes ONNX Runtime can run. Each op infers its outputs' shapes,
// so ONNX Runtime can plan memory around it.
//
//   y = q3vl.QuantLinear(x, weight, scales [, zero_points] [, bias])
//     x            float32 [..., K]   (M = product of the leading dims; M = 1 is decode)
//     weight       uint8   [n_tiles, k_blocks, 16·block_size·bits/8]   (quant_linear.h)
//     scales       float16 [n_tiles, k_blocks, 16]
//     zero_points  uint8   [n_tiles, k_blocks, 16]   optional ("" = symmetric)
//     bias         float32 [N]                       optional
//     attributes   K, N, bits (4 | 5 | 6 | 8), block_size (32 | 64 | 128),
//                  grid (string "uniform" | "nl", optional, default "uniform"; "nl" needs
//                  bits 4 and no zero_points)
//     y            float32 [..., N]
//
//   y = q3vl.QuantSwiGLU(x, weight, scales [, zero_points])   (quant_linear.h)
//     y = silu(x Wg^T) · (x Wu^T), the MLP's gate/up projections and activation in one op
//     weight, scales, zero_points  QuantLinear's, of the stacked matrix with
//                  swiglu_stacked_rows(N) rows in the (gate, up) pair order
//     attributes   K, N (the intermediate size I), bits, block_size, grid
//     y            float32 [..., N]
//
//   y = q3vl.Bf16Linear(x, weight [, bias])   (bf16_linear.h)
//     x            float32 [..., K]
//     weight       bfloat16 [n_tiles, ceil(K / 2), 16, 2]
//     bias         float32 [N]   optional
//     attributes   K, N
//     y            float32 [..., N]
//
//   o = q3vl.Bf16Attention(q, k, v)   (bf16_attention.h)
//     q, k, v      float32 [B, L, num_heads * head_dim]  (each batch entry attends within itself)
//     attributes   num_heads, head_dim (even), scale (float)
//     o            float32 [B, L, num_heads * head_dim]
//
//   q, k, v = q3vl.QkNormRope(qkv, q_norm_weight, k_norm_weight, cos, sin)   (qk_norm_rope.h)
//     qkv          float32 [..., (num_heads + 2 kv_num_heads) * head_dim]
//     q_norm_weight, k_norm_weight  float32 [head_dim]
//     cos, sin     float32 [tokens, head_dim / 2]   (tokens = product of qkv's leading dims)
//     attributes   num_heads, kv_num_heads, head_dim (even), epsilon (float)
//     q            float32 [..., num_heads * head_dim];  k, v  float32 [..., kv_num_heads * head_dim]
//
//   o, present_key, present_value = q3vl.KvAttention(q, k, v, past_key, past_value, seqlens_k,
//                                                    total_sequence_length)   (kv_attention.h)
//     q            float32 [B, S, num_heads * head_dim];  k, v  float32 [B, S, kv_num_heads * head_dim]
//     past_key, past_value    float16 [B, kv_num_heads, P, head_dim] (bind the present's buffer
//                             to write in place, as for com.microsoft.GroupQueryAttention)
//     seqlens_k    int32 [B] (valid rows after the call - 1);  total_sequence_length  int32 scalar
//     attributes   num_heads, kv_num_heads, head_dim, scale (float)
//     o            float32 [B, S, num_heads * head_dim];  present_*  float16 [B, kv_num_heads,
//                  max(P, total_sequence_length), head_dim]
//   q3vl.KvAttentionInt8: the same with int8 caches [B, kv_num_heads, P, kv_row_bytes(int8,
//                  head_dim)]: each row head_dim codes, then a float16 scale per 32 values
//
//   y = q3vl.MoE(x, router_logits, fc1, fc1_scales, fc2, fc2_scales [, fc1_zero_points, fc2_zero_points])
//     x              float32 [..., H]   (T = product of the leading dims)
//     router_logits  float32 [T, E]     raw logits (the op does softmax, top-k, renormalisation)
//     fc1            uint8   [E, n_tiles(2I), k_blocks(H), 16·block_size·bits/8]  gate/up rows interleaved
//     fc1_scales     float16 [E, n_tiles(2I), k_blocks(H), 16]
//     fc2, fc2_scales        the same for [H, I]
//     fc1_zero_points, fc2_zero_points  uint8 like the scales, optional ("" = symmetric)
//     attributes     num_experts, k, hidden_size, intermediate_size, bits, block_size, grid (as QuantLinear's)
//     y              float32 [..., H]
// Threads come from the session's intra-op pool (KernelContext::ParallelFor); the op
// keeps no thread pool and no copy of the weights (it reads the initializers in place,
// which ONNX Runtime memory-maps from the package's external-data file).
//
// Lifetime: the domain and its op are process-wide statics, so they outlive every
// session (ONNX Runtime requires that). Thread-safety: add_q3vl_ops may be called from any
// thread; kernels are stateless apart from the validated attributes.
#pragma once

#include <onnxruntime_cxx_api.h>

namespace q3vl::kernels {

// Registers the "q3vl" domain on `options`. Every session q3vl creates calls this (see
// runtime/ort_env.cpp), so q3vl packages always find their ops. Throws Ort::Exception.
void add_q3vl_ops(Ort::SessionOptions& options);

}  // namespace q3vl::kernels
