// The decoder's attention over its KV cache, as one graph fragment:
//
//   o, present_key, present_value = attention(q, k, v, past_key, past_value, seqlens_k, total)
//     q        f32 [B, S, num_heads * head_dim]      (after q_norm + MRoPE)
//     k, v     f32 [B, S, kv_num_heads * head_dim]   (k after k_norm + MRoPE)
//     past_*   kv_cache dtype [B, kv_num_heads, P, kv_cache_width]; present_* the same with the
//              new rows written at [seqlens_k[b] + 1 - S, seqlens_k[b] + 1) (in place when
//              the caller binds one buffer to both, shared/ort.md)
//     o        f32 [B, S, num_heads * head_dim]
//   o[b, s, head h] = softmax_t<=p(q·K[t] / sqrt(head_dim)) · V   with p = seqlens_k[b] + 1 - S + s,
//   kv head h / (num_heads / kv_num_heads) (grouped-query attention).
//
// float32 cache: com.microsoft.GroupQueryAttention. float16 cache: q3vl.KvAttention
// (kernels/kv_attention.h: the same semantics, float32 q/k/v/o and math, float16 cache
// rows). int8 cache: q3vl.KvAttentionInt8 (rows of int8 codes with a float16 scale per 32
// values, kernels/kv_attention.h). Why not GroupQueryAttention in float16, which ONNX Runtime also registers on CPU:
// measured with bench/kernels/kv_bench.cpp, bench/kernels/results/2026-12-06-kv16.md.
#pragma once

#include <cstdint>

#include "builder/graph.h"

namespace q3vl::builder {

struct KvAttentionShape {
  std::int64_t num_heads = 0;
  std::int64_t kv_num_heads = 0;
  std::int64_t head_dim = 0;
  DType kv_cache = DType::f32;  // f32 | f16 | i8
};

// The caches' last dimension: head_dim, or an int8 row's bytes (kernels::kv_row_bytes).
std::int64_t kv_cache_width(DType kv_cache, std::int64_t head_dim);

struct KvAttention {
  Value output;
  Value present_key;
  Value present_value;
};

KvAttention write_kv_attention(Graph& g, const KvAttentionShape& shape, const Value& q, const Value& k,
                               const Value& v, const Value& past_key, const Value& past_value,
                               const Value& seqlens_k, const Value& total_sequence_length);

}  // namespace q3vl::builder
