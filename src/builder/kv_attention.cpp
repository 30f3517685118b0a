#include "builder/kv_attention.h"

#include <cmath>
#include <string>

#include "kernels/kv_attention.h"

namespace q3vl::builder {

KvAttention write_kv_attention(Graph& g, const KvAttentionShape& shape, const Value& q, const Value& k,
                               const Value& v, const Value& past_key, const Value& past_value,
                               const Value& seqlens_k, const Value& total_sequence_length) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(shape.head_dim));
  const bool q3vl_op = shape.kv_cache != DType::f32;
  const std::string op =
      !q3vl_op ? std::string("com.microsoft.GroupQueryAttention")
               : std::string(kernels::kDomain) + "." +
                     (shape.kv_cache == DType::i8 ? kernels::kKvAttentionInt8Op : kernels::kKvAttentionOp);
  std::vector<Attr> attrs{{"num_heads", shape.num_heads}, {"kv_num_heads", shape.kv_num_heads}, {"scale", scale}};
  if (q3vl_op) {
    attrs.emplace_back("head_dim", shape.head_dim);
  } else {
    attrs.emplace_back("do_rotary", std::int64_t{0});
  }
  auto [o, present_key, present_value] =
      g.ops<3>(op, {q, k, v, past_key, past_value, seqlens_k, total_sequence_length}, attrs);
  return {o, present_key, present_value};
}

std::int64_t kv_cache_width(DType kv_cache, std::int64_t head_dim) {
  return kv_cache == DType::i8 ? kernels::kv_row_bytes(kernels::KvCacheType::int8, head_dim) : head_dim;
}

}  // namespace q3vl::builder
