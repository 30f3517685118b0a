#include "kernels/qk_norm_rope.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

// Tokens per work item: a decode step is one item; prefill spreads over the pool.
constexpr std::int64_t kTokensPerItem = 16;

// Independent partial sums of squares: one running double sum is a chain of dependent
// adds (4 cycles each), 40 heads x 128 of them per 4B decode step; four chains run in
// parallel (a 4B decode step's node: 10 -> 6 us on the 2-vCPU Xeon VM).
constexpr std::int64_t kSumLanes = 4;

// One head: rms-norm with `weight`, then rotate-half with this token's cos / sin.
// The sum of squares is accumulated in double so a long head_dim rounds no worse than
// ONNX Runtime's SimplifiedLayerNormalization.
void norm_rope_head(const float* x, const float* weight, const float* cos, const float* sin, std::int64_t d,
                    float epsilon, float* normed, float* out) {
  double lanes[kSumLanes] = {};
  std::int64_t j = 0;
  for (; j + kSumLanes <= d; j += kSumLanes) {
    for (std::int64_t l = 0; l < kSumLanes; ++l) lanes[l] += static_cast<double>(x[j + l]) * x[j + l];
  }
  for (; j < d; ++j) lanes[0] += static_cast<double>(x[j]) * x[j];
  const double sum_sq = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  const float inv = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(d) + epsilon));
  for (j = 0; j < d; ++j) normed[j] = x[j] * inv * weight[j];
  const std::int64_t half = d / 2;
  for (j = 0; j < half; ++j) {
    out[j] = normed[j] * cos[j] - normed[j + half] * sin[j];
    out[j + half] = normed[j + half] * cos[j] + normed[j] * sin[j];
  }
}

struct Job {
  const QkNormRopeArgs* args;
  std::int64_t tokens;
};

void run_item(void* data, std::size_t item) {
  const auto& job = *static_cast<const Job*>(data);
  const QkNormRopeArgs& a = *job.args;
  const QkNormRopeShape& s = a.shape;
  const std::int64_t d = s.head_dim, half = d / 2;
  thread_local std::vector<float> normed;
  normed.resize(static_cast<std::size_t>(d));
  const std::int64_t begin = static_cast<std::int64_t>(item) * kTokensPerItem;
  const std::int64_t end = std::min(job.tokens, begin + kTokensPerItem);
  for (std::int64_t r = begin; r < end; ++r) {
    const float* row = a.qkv + r * s.qkv_width();
    const float* cos = a.cos + r * half;
    const float* sin = a.sin + r * half;
    for (std::int64_t h = 0; h < s.num_heads; ++h) {
      norm_rope_head(row + h * d, a.q_norm, cos, sin, d, s.epsilon, normed.data(), a.q + r * s.q_width() + h * d);
    }
    for (std::int64_t h = 0; h < s.kv_num_heads; ++h) {
      norm_rope_head(row + s.q_width() + h * d, a.k_norm, cos, sin, d, s.epsilon, normed.data(),
                     a.k + r * s.kv_width() + h * d);
    }
    std::memcpy(a.v + r * s.kv_width(), row + s.q_width() + s.kv_width(),
                static_cast<std::size_t>(s.kv_width()) * sizeof(float));
  }
}

}  // namespace

void validate(const QkNormRopeShape& shape, const char* where) {
  if (shape.num_heads <= 0 || shape.kv_num_heads <= 0) {
    throw_error(ErrorKind::usage, where, "num_heads, kv_num_heads", "positive counts",
                std::to_string(shape.num_heads) + ", " + std::to_string(shape.kv_num_heads));
  }
  if (shape.head_dim <= 0 || shape.head_dim % 2 != 0) {
    throw_error(ErrorKind::usage, where, "head_dim", "a positive even number", std::to_string(shape.head_dim));
  }
  if (!(shape.epsilon >= 0.0f)) {
    throw_error(ErrorKind::usage, where, "epsilon", "a number >= 0", std::to_string(shape.epsilon));
  }
}

void qk_norm_rope(const QkNormRopeArgs& args, std::int64_t tokens, const Parallelism& parallel) {
  if (tokens <= 0) return;
  Job job{&args, tokens};
  const auto items = static_cast<std::size_t>((tokens + kTokensPerItem - 1) / kTokensPerItem);
  if (items == 1) {
    run_item(&job, 0);
  } else {
    parallel.run(parallel.context, items, run_item, &job);
  }
}

}  // namespace q3vl::kernels
