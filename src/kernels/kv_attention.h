// q3vl.KvAttention: the decoder's grouped-query attention over a float16 KV cache, with
// float32 queries, float32 math and a float32 output; q3vl.KvAttentionInt8: the same over
// an int8 cache (rows of int8 codes with a float16 scale per 32 values, kv_row_bytes).
//
// Semantics are com.microsoft.GroupQueryAttention's on CPU as q3vl uses it (do_rotary 0,
// no local window, no softcap; shared/ort.md): for batch row b with
// total_b = seqlens_k[b] + 1 valid rows after the call and S new tokens,
//   - the new k/v rows of b are rounded to the cache's form (float16, or quantize_kv_row's
//     int8 codes) and written to the cache at rows
//     [total_b - S, total_b) of sequence b (in place when past and present are one buffer);
//   - new token s of row b (position p = total_b - S + s) attends causally to rows [0, p]:
//       o[b, s, head h] = sum_t softmax_t(scale · q[b, s, h] · K[b, h / g, t]) · V[b, h / g, t]
//     with g = num_heads / kv_num_heads, K and V read from the cache (so a token sees
//     exactly the rounded K/V later steps see).
// Why a q3vl op and not GroupQueryAttention in float16 (which ONNX Runtime registers on
// CPU): see bench/kernels/results/2026-12-06-kv16.md. ORT's float16 path converts the whole
// K and V of a KV head to a float32 scratch once per QUERY head (g times per KV head) and
// needs float16 q/o around it; this op converts each cached row once per step, in
// registers, shared by the g query heads of its group, so a decode step reads half the
// bytes of the float32 cache and writes none back.
//
// Work split: one work item per (batch row, KV head, block of new tokens) on the
// caller's Parallelism (the session's intra-op threads), after a pass that writes the new
// rows; when every sequence's new tokens fit one block (decode), each (batch row, KV head)
// item writes its rows and attends in one pass. ISA, following active_isa(): AVX-512
// (F + BW + VL, with F16C conversions) for avx512vnni, AVX2 + FMA + F16C for avx2, else a
// portable scalar path; all compute the same float32 math up to summation order.
//
// Thread-safety: pure functions of their arguments (per-thread scratch).
#pragma once

#include <cstdint>

#include "kernels/quant_linear.h"

namespace q3vl::kernels {

inline constexpr const char* kKvAttentionOp = "KvAttention";
inline constexpr const char* kKvAttentionInt8Op = "KvAttentionInt8";

// The form of a cached row of head_dim values.
//   float16: head_dim float16 values (2 bytes each).
//   int8:    head_dim int8 codes, then ceil(head_dim / 32) float16 scales (little-endian,
//            2-byte aligned only when head_dim is even): value d = code[d] · scale[d / 32],
//            llama.cpp's q8_0 form of a row. head_dim 128: 136 bytes, 1.0625 per value,
//            so a decode step reads 0.53 of the float16 cache's bytes.
enum class KvCacheType { float16, int8 };
inline constexpr std::int64_t kKvInt8Block = 32;

// Bytes of one cached row.
std::int64_t kv_row_bytes(KvCacheType type, std::int64_t head_dim);

// One int8 row from x[0, head_dim): per 32-value block, scale = float16(max|x| / 127) and
// code = x / scale rounded half to even, clamped to [-127, 127] (0 when the scale is 0 or
// the quotient is not finite: an int8 row has no NaN or infinity).
// The codes divide by the stored float16 scale, so each value is the nearest multiple
// of the scale the row can hold.
void quantize_kv_row(const float* x, std::int64_t head_dim, std::uint8_t* row);

struct KvAttentionShape {
  std::int64_t num_heads = 0;
  std::int64_t kv_num_heads = 0;  // divides num_heads
  std::int64_t head_dim = 0;
  float scale = 0.0f;  // applied to q·k; > 0

  std::int64_t group() const { return num_heads / kv_num_heads; }
};

// Throws q3vl::Error(usage) naming `where` unless the head counts are positive,
// kv_num_heads divides num_heads, head_dim > 0 and scale > 0.
void validate(const KvAttentionShape& shape, const char* where);

struct KvAttentionArgs {
  KvAttentionShape shape;
  std::int64_t batch = 0;       // B
  std::int64_t new_tokens = 0;  // S
  std::int64_t rows = 0;        // cache rows per sequence (the present's third dim)
  const float* q = nullptr;     // [B, S, num_heads * head_dim]
  const float* k = nullptr;     // [B, S, kv_num_heads * head_dim]
  const float* v = nullptr;     // [B, S, kv_num_heads * head_dim]
  const std::int32_t* seqlens_k = nullptr;  // [B]; S <= seqlens_k[b] + 1 <= rows
  KvCacheType cache = KvCacheType::float16;
  std::uint8_t* key_cache = nullptr;    // [B, kv_num_heads, rows] rows of kv_row_bytes(cache, head_dim)
  std::uint8_t* value_cache = nullptr;  // the same
  float* out = nullptr;                     // [B, S, num_heads * head_dim]
};

// Throws q3vl::Error(shape) naming seqlens_k unless S <= seqlens_k[b] + 1 <= rows for every b.
void check_lengths(const KvAttentionArgs& args, const char* where);

// Writes the new rows, then the attention output, as above. Preconditions: validate()
// and check_lengths() hold. Never throws.
void kv_attention(const KvAttentionArgs& args, const Parallelism& parallel = {});

// Queries a row primitive takes at once (kv_attention.cpp walks a work item's queries in
// groups of this many): the SIMD paths keep a group's sums in registers, and GQA's usual
// 4 query heads per KV head make a decode step one group.
inline constexpr std::int64_t kQueryGroup = 4;

// One ISA's row primitives (kv_attention.cpp drives them); 1 <= count_q <= kQueryGroup.
struct KvAttentionIsa {
  // The two products over cached rows of one form (rows kv_row_bytes apart).
  struct Products {
    // scores[m * stride + t] = scale * q[m]·K[t] for m < count_q, t < count_t; q rows
    // are head_dim floats apart.
    void (*scores)(const float* q, std::int64_t count_q, const std::uint8_t* keys, std::int64_t count_t,
                   std::int64_t head_dim, float scale, float* scores, std::int64_t stride);
    // out[m] += sum_t w[m * stride + t] * V[t] for m < count_q (out rows head_dim apart).
    void (*accumulate)(const float* w, std::int64_t count_q, std::int64_t stride, const std::uint8_t* values,
                       std::int64_t count_t, std::int64_t head_dim, float* out);
  };
  Products half, int8;
  // row[0, n) = softmax(row[0, n)) in place (n >= 1).
  void (*softmax)(float* row, std::int64_t n);
  // y[i] = float16(x[i]), round to nearest even.
  void (*to_half)(const float* x, std::uint16_t* y, std::int64_t n);
};

extern const KvAttentionIsa kKvAttentionScalar;
extern const KvAttentionIsa kKvAttentionAvx2;
extern const KvAttentionIsa kKvAttentionAvx512;

}  // namespace q3vl::kernels
