#include "kernels/kv_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "kernels/dispatch.h"
#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

// New tokens per work item: enough query vectors (block x group) to reuse each converted
// K/V row many times in prefill, few enough that the scores of a block stay in L2.
constexpr std::int64_t kTokensPerItem = 16;

// A cached row of `type` as head_dim floats.
template <KvCacheType Type>
void load_row(const std::uint8_t* row, std::int64_t head_dim, float* out) {
  if constexpr (Type == KvCacheType::float16) {
    for (std::int64_t d = 0; d < head_dim; ++d) {
      std::uint16_t bits;
      std::memcpy(&bits, row + 2 * d, sizeof bits);
      out[d] = io::f16_to_f32(bits);
    }
  } else {
    for (std::int64_t d = 0; d < head_dim; ++d) {
      std::uint16_t bits;
      std::memcpy(&bits, row + head_dim + 2 * (d / kKvInt8Block), sizeof bits);
      out[d] = static_cast<float>(static_cast<std::int8_t>(row[d])) * io::f16_to_f32(bits);
    }
  }
}

template <KvCacheType Type>
void scalar_scores(const float* q, std::int64_t count_q, const std::uint8_t* keys, std::int64_t count_t,
                   std::int64_t head_dim, float scale, float* scores, std::int64_t stride) {
  const std::int64_t row_bytes = kv_row_bytes(Type, head_dim);
  std::vector<float> row(static_cast<std::size_t>(head_dim));
  for (std::int64_t t = 0; t < count_t; ++t) {
    load_row<Type>(keys + t * row_bytes, head_dim, row.data());
    for (std::int64_t m = 0; m < count_q; ++m) {
      float dot = 0.0f;
      for (std::int64_t d = 0; d < head_dim; ++d) dot += q[m * head_dim + d] * row[static_cast<std::size_t>(d)];
      scores[m * stride + t] = scale * dot;
    }
  }
}

template <KvCacheType Type>
void scalar_accumulate(const float* w, std::int64_t count_q, std::int64_t stride, const std::uint8_t* values,
                       std::int64_t count_t, std::int64_t head_dim, float* out) {
  const std::int64_t row_bytes = kv_row_bytes(Type, head_dim);
  std::vector<float> row(static_cast<std::size_t>(head_dim));
  for (std::int64_t t = 0; t < count_t; ++t) {
    load_row<Type>(values + t * row_bytes, head_dim, row.data());
    for (std::int64_t m = 0; m < count_q; ++m) {
      const float wt = w[m * stride + t];
      for (std::int64_t d = 0; d < head_dim; ++d) out[m * head_dim + d] += wt * row[static_cast<std::size_t>(d)];
    }
  }
}

void scalar_softmax(float* row, std::int64_t n) {
  float top = -std::numeric_limits<float>::infinity();
  for (std::int64_t t = 0; t < n; ++t) top = std::max(top, row[t]);
  float sum = 0.0f;
  for (std::int64_t t = 0; t < n; ++t) sum += (row[t] = std::exp(row[t] - top));
  const float inv = 1.0f / sum;
  for (std::int64_t t = 0; t < n; ++t) row[t] *= inv;
}

void scalar_to_half(const float* x, std::uint16_t* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = io::f32_to_f16(x[i]);
}

const KvAttentionIsa& active() {
  switch (active_isa()) {
    case Isa::avx512vnni: return kKvAttentionAvx512;
    case Isa::avx2: return kKvAttentionAvx2;
    case Isa::scalar: break;
  }
  return kKvAttentionScalar;
}

struct Job {
  const KvAttentionArgs* args;
  const KvAttentionIsa* isa;
  const KvAttentionIsa::Products* products;  // the isa's, for the cache's row form
  std::int64_t row_bytes;
  std::int64_t blocks;  // token blocks per (batch row, KV head)
};

std::size_t cache_offset(const Job& job, std::int64_t b, std::int64_t kv_head, std::int64_t row) {
  const KvAttentionArgs& a = *job.args;
  return static_cast<std::size_t>(((b * a.shape.kv_num_heads + kv_head) * a.rows + row) * job.row_bytes);
}

// Item i = (b, kv head): the new k/v rows of b into the cache.
void write_rows(void* data, std::size_t i) {
  const Job& job = *static_cast<const Job*>(data);
  const KvAttentionArgs& a = *job.args;
  const auto item = static_cast<std::int64_t>(i);
  const std::int64_t b = item / a.shape.kv_num_heads, h = item % a.shape.kv_num_heads, hd = a.shape.head_dim;
  const std::int64_t first = a.seqlens_k[b] + 1 - a.new_tokens;
  for (std::int64_t s = 0; s < a.new_tokens; ++s) {
    const std::size_t from = static_cast<std::size_t>(((b * a.new_tokens + s) * a.shape.kv_num_heads + h) * hd);
    const std::size_t to = cache_offset(job, b, h, first + s);
    if (a.cache == KvCacheType::int8) {
      quantize_kv_row(a.k + from, hd, a.key_cache + to);
      quantize_kv_row(a.v + from, hd, a.value_cache + to);
    } else {
      // Row starts are 2-byte aligned: float16 rows are 2 · head_dim bytes.
      job.isa->to_half(a.k + from, reinterpret_cast<std::uint16_t*>(a.key_cache + to), hd);
      job.isa->to_half(a.v + from, reinterpret_cast<std::uint16_t*>(a.value_cache + to), hd);
    }
  }
}

// Item i = (b, kv head, token block): the outputs of the block's tokens x the group's heads.
void attend(void* data, std::size_t i) {
  const Job& job = *static_cast<const Job*>(data);
  const KvAttentionArgs& a = *job.args;
  const auto item = static_cast<std::int64_t>(i);
  const std::int64_t block = item % job.blocks, bh = item / job.blocks;
  const std::int64_t b = bh / a.shape.kv_num_heads, h = bh % a.shape.kv_num_heads;
  const std::int64_t hd = a.shape.head_dim, g = a.shape.group(), s_count = a.new_tokens;
  const std::int64_t s_begin = block * kTokensPerItem, s_end = std::min(s_count, s_begin + kTokensPerItem);
  const std::int64_t past = a.seqlens_k[b] + 1 - s_count;
  const std::int64_t visible = past + s_end;  // rows the block's last token sees
  const std::int64_t count_q = (s_end - s_begin) * g;
  // Query m = (s - s_begin) * g + j is head h * g + j of token s: consecutive in q.
  thread_local std::vector<float> queries, scores, out;
  queries.resize(static_cast<std::size_t>(count_q * hd));
  scores.resize(static_cast<std::size_t>(count_q * visible));
  out.assign(static_cast<std::size_t>(count_q * hd), 0.0f);
  const std::int64_t q_width = a.shape.num_heads * hd;
  for (std::int64_t s = s_begin; s < s_end; ++s) {
    const float* from = a.q + (b * s_count + s) * q_width + h * g * hd;
    std::copy(from, from + g * hd, queries.begin() + (s - s_begin) * g * hd);
  }
  const std::uint8_t* keys = a.key_cache + cache_offset(job, b, h, 0);
  const std::uint8_t* values = a.value_cache + cache_offset(job, b, h, 0);
  for (std::int64_t m = 0; m < count_q; m += kQueryGroup) {
    job.products->scores(queries.data() + m * hd, std::min(kQueryGroup, count_q - m), keys, visible, hd, a.shape.scale,
                    scores.data() + m * visible, visible);
  }
  // Causal softmax: token s sees rows [0, past + s]; the rest of its row gets weight 0.
  for (std::int64_t m = 0; m < count_q; ++m) {
    float* row = scores.data() + m * visible;
    const std::int64_t seen = past + s_begin + m / g + 1;
    job.isa->softmax(row, seen);
    std::fill(row + seen, row + visible, 0.0f);
  }
  for (std::int64_t m = 0; m < count_q; m += kQueryGroup) {
    job.products->accumulate(scores.data() + m * visible, std::min(kQueryGroup, count_q - m), visible, values, visible, hd,
                        out.data() + m * hd);
  }
  for (std::int64_t s = s_begin; s < s_end; ++s) {
    float* to = a.out + (b * s_count + s) * q_width + h * g * hd;
    std::copy(out.begin() + (s - s_begin) * g * hd, out.begin() + (s - s_begin + 1) * g * hd, to);
  }
}

// Item i = (b, kv head) when all new tokens form one block: write_rows then attend.
void write_rows_then_attend(void* data, std::size_t i) {
  write_rows(data, i);
  attend(data, i);
}

void run(const Parallelism& parallel, std::size_t items, void (*fn)(void*, std::size_t), Job& job) {
  if (items == 1) {
    fn(&job, 0);
  } else {
    parallel.run(parallel.context, items, fn, &job);
  }
}

}  // namespace

const KvAttentionIsa kKvAttentionScalar{
    {scalar_scores<KvCacheType::float16>, scalar_accumulate<KvCacheType::float16>},
    {scalar_scores<KvCacheType::int8>, scalar_accumulate<KvCacheType::int8>},
    scalar_softmax,
    scalar_to_half};

std::int64_t kv_row_bytes(KvCacheType type, std::int64_t head_dim) {
  if (type == KvCacheType::float16) return 2 * head_dim;
  return head_dim + 2 * ((head_dim + kKvInt8Block - 1) / kKvInt8Block);
}

void quantize_kv_row(const float* x, std::int64_t head_dim, std::uint8_t* row) {
  for (std::int64_t begin = 0; begin < head_dim; begin += kKvInt8Block) {
    const std::int64_t end = std::min(head_dim, begin + kKvInt8Block);
    float amax = 0.0f;
    for (std::int64_t d = begin; d < end; ++d) amax = std::max(amax, std::fabs(x[d]));
    const std::uint16_t scale_bits = io::f32_to_f16(amax / 127.0f);
    const float scale = io::f16_to_f32(scale_bits);
    for (std::int64_t d = begin; d < end; ++d) {
      const float q = scale > 0.0f ? std::nearbyint(x[d] / scale) : 0.0f;
      const float code = std::isfinite(q) ? std::clamp(q, -127.0f, 127.0f) : 0.0f;
      row[d] = static_cast<std::uint8_t>(static_cast<std::int8_t>(code));
    }
    std::memcpy(row + head_dim + 2 * (begin / kKvInt8Block), &scale_bits, sizeof scale_bits);
  }
}

void validate(const KvAttentionShape& shape, const char* where) {
  if (shape.num_heads <= 0 || shape.kv_num_heads <= 0 || shape.num_heads % shape.kv_num_heads != 0) {
    throw_error(ErrorKind::usage, where, "num_heads, kv_num_heads",
                "positive counts, kv_num_heads dividing num_heads",
                std::to_string(shape.num_heads) + ", " + std::to_string(shape.kv_num_heads));
  }
  if (shape.head_dim <= 0) {
    throw_error(ErrorKind::usage, where, "head_dim", "a positive number", std::to_string(shape.head_dim));
  }
  if (!(shape.scale > 0.0f)) {
    throw_error(ErrorKind::usage, where, "scale", "a number > 0", std::to_string(shape.scale));
  }
}

void check_lengths(const KvAttentionArgs& args, const char* where) {
  for (std::int64_t b = 0; b < args.batch; ++b) {
    const std::int64_t total = static_cast<std::int64_t>(args.seqlens_k[b]) + 1;
    if (total < args.new_tokens || total > args.rows) {
      throw_error(ErrorKind::shape, where, "seqlens_k[" + std::to_string(b) + "]",
                  "valid rows - 1 with " + std::to_string(args.new_tokens) + " <= valid rows <= " +
                      std::to_string(args.rows) + " (new tokens .. cache rows)",
                  std::to_string(total - 1));
    }
  }
}

void kv_attention(const KvAttentionArgs& args, const Parallelism& parallel) {
  if (args.batch <= 0 || args.new_tokens <= 0) return;
  const KvAttentionIsa& isa = active();
  Job job{&args, &isa, args.cache == KvCacheType::int8 ? &isa.int8 : &isa.half,
          kv_row_bytes(args.cache, args.shape.head_dim), (args.new_tokens + kTokensPerItem - 1) / kTokensPerItem};
  const auto heads = static_cast<std::size_t>(args.batch * args.shape.kv_num_heads);
  if (job.blocks == 1) {
    // One item per (batch row, KV head) reads only the rows it writes itself: one pass,
    // one wait for the threads (decode runs this 36 times a step).
    run(parallel, heads, write_rows_then_attend, job);
    return;
  }
  run(parallel, heads, write_rows, job);
  run(parallel, heads * static_cast<std::size_t>(job.blocks), attend, job);
}

}  // namespace q3vl::kernels
