// moe: route, sort the (token, expert) pairs by expert, then QuantLinear's tile kernel per
// expert over (expert, row chunk, tile group) work items; see moe.h.
#include "kernels/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/activation_quant.h"
#include "kernels/dispatch.h"
#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

// As in quant_linear.cpp: 64 rows of int8 activations stay in L2 while a tile group's
// weights meet them; 4 tiles per item balance the load without per-item overhead.
constexpr std::int64_t kRowsPerItem = 64;
constexpr std::int64_t kTilesPerItem = 4;
// Rows per item of the cheap row-wise steps (quantize, SwiGLU, combine).
constexpr std::int64_t kRowsPerCheapItem = 16;

// One matmul work item: rows [m_begin, m_end) of the sorted pairs (all routed to `expert`)
// against tiles [t_begin, t_end) of that expert's matrix.
struct Item {
  std::int64_t expert, m_begin, m_end, t_begin, t_end;
};

// Per-thread scratch reused across calls (a decode step allocates nothing).
struct Scratch {
  std::vector<std::int64_t> pair_expert;  // [T·k] token-major: the s-th choice of token t
  std::vector<float> pair_weight;         // [T·k]
  std::vector<std::int64_t> pair_row;     // [T·k] its row in the expert-sorted order
  std::vector<std::int64_t> row_token;    // [T·k] sorted row -> token
  std::vector<std::int64_t> offsets;      // [E + 1] expert e's rows: [offsets[e], offsets[e+1])
  std::vector<std::int64_t> order;        // [E] routing scratch
  QuantizedActivations x_tokens;          // x quantized per token
  QuantizedActivations x_rows;            // ... copied to the sorted rows
  std::vector<float> h;                   // [rows, 2I] fc1 output
  std::vector<float> a;                   // [rows, I]  SwiGLU output
  QuantizedActivations a_rows;            // a quantized
  std::vector<float> o;                   // [rows, H]  fc2 output
  std::vector<Item> items;
};

struct Pass {
  const IsaKernels* isa;
  const MoEWeights* w;
  const float* x;  // [tokens, H]
  std::int64_t tokens;
  float* y;        // [tokens, H]
  Scratch* s;
  bool fc2;        // which matmul the items are for
};

// Top-k of one token's logits (ties: lower index first) and the renormalised weights.
void route_token(const float* logits, const MoEShape& shape, std::vector<std::int64_t>& order,
                 std::int64_t* experts, float* weights) {
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::partial_sort(order.begin(), order.begin() + shape.k, order.end(), [&](std::int64_t a, std::int64_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const float top = logits[order[0]];
  float sum = 0.0f;
  for (std::int64_t s = 0; s < shape.k; ++s) {
    experts[s] = order[s];
    weights[s] = std::exp(logits[order[s]] - top);
    sum += weights[s];
  }
  for (std::int64_t s = 0; s < shape.k; ++s) weights[s] /= sum;
}

// Routes every token of the pass and sorts the pairs by expert (stable: by token within
// an expert, so results do not depend on scheduling).
void route(const MoEShape& shape, const float* logits, std::int64_t tokens, Scratch& s) {
  const std::int64_t E = shape.num_experts, k = shape.k, pairs = tokens * k;
  s.pair_expert.resize(static_cast<std::size_t>(pairs));
  s.pair_weight.resize(static_cast<std::size_t>(pairs));
  s.pair_row.resize(static_cast<std::size_t>(pairs));
  s.row_token.resize(static_cast<std::size_t>(pairs));
  s.order.resize(static_cast<std::size_t>(E));
  s.offsets.assign(static_cast<std::size_t>(E + 1), 0);
  for (std::int64_t t = 0; t < tokens; ++t) {
    route_token(logits + t * E, shape, s.order, s.pair_expert.data() + t * k, s.pair_weight.data() + t * k);
    for (std::int64_t j = 0; j < k; ++j) ++s.offsets[static_cast<std::size_t>(s.pair_expert[t * k + j] + 1)];
  }
  for (std::int64_t e = 0; e < E; ++e) s.offsets[e + 1] += s.offsets[e];
  std::vector<std::int64_t>& next = s.order;  // reused: the next free row of each expert
  std::copy(s.offsets.begin(), s.offsets.end() - 1, next.begin());
  for (std::int64_t p = 0; p < pairs; ++p) {
    const std::int64_t row = next[static_cast<std::size_t>(s.pair_expert[p])]++;
    s.pair_row[p] = row;
    s.row_token[row] = p / k;
  }
}

// (expert, row chunk, tile group) items over the sorted rows for a matrix of n_tiles.
void make_items(const MoEShape& shape, std::int64_t n_tiles, Scratch& s) {
  s.items.clear();
  for (std::int64_t e = 0; e < shape.num_experts; ++e) {
    for (std::int64_t m = s.offsets[e]; m < s.offsets[e + 1]; m += kRowsPerItem) {
      for (std::int64_t t = 0; t < n_tiles; t += kTilesPerItem) {
        s.items.push_back({e, m, std::min(s.offsets[e + 1], m + kRowsPerItem), t, std::min(n_tiles, t + kTilesPerItem)});
      }
    }
  }
}

void quantize_tokens_item(void* data, std::size_t item) {
  auto& p = *static_cast<Pass*>(data);
  const std::int64_t begin = static_cast<std::int64_t>(item) * kRowsPerCheapItem;
  p.isa->quantize_rows(p.x, p.w->shape.hidden_size, begin, std::min(p.tokens, begin + kRowsPerCheapItem),
                       p.s->x_tokens);
}

// Copies each token's quantized x to the sorted rows routed from it.
void gather_rows(Scratch& s) {
  const QuantizedActivations& from = s.x_tokens;
  QuantizedActivations& to = s.x_rows;
  const std::int64_t blocks = from.blocks_per_row();
  const auto rows = static_cast<std::int64_t>(s.row_token.size());
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t t = s.row_token[r];
    std::memcpy(to.values.data() + r * to.k_padded, from.values.data() + t * from.k_padded,
                static_cast<std::size_t>(from.k_padded));
    std::memcpy(to.scales.data() + r * blocks, from.scales.data() + t * blocks, static_cast<std::size_t>(blocks) * 4);
    std::memcpy(to.sums.data() + r * blocks, from.sums.data() + t * blocks, static_cast<std::size_t>(blocks) * 4);
  }
}

void matmul_item(void* data, std::size_t index) {
  auto& p = *static_cast<Pass*>(data);
  const Item& item = p.s->items[index];
  const PackedWeightsView w = p.fc2 ? p.w->fc2_expert(item.expert) : p.w->fc1_expert(item.expert);
  const QuantizedActivations& a = p.fc2 ? p.s->a_rows : p.s->x_rows;
  float* out = p.fc2 ? p.s->o.data() : p.s->h.data();
  const TileOutput to{TileOutput::Kind::linear, out, w.shape.n, nullptr};  // rows of h [.., 2I] / o [.., H]
  for (std::int64_t t = item.t_begin; t < item.t_end; ++t) p.isa->tile_rows(w, a, t, item.m_begin, item.m_end, to);
}

// a = silu(gate) * up for a chunk of sorted rows, then quantized for fc2.
void swiglu_item(void* data, std::size_t item) {
  auto& p = *static_cast<Pass*>(data);
  const std::int64_t I = p.w->shape.intermediate_size;
  const auto rows = static_cast<std::int64_t>(p.s->row_token.size());
  const std::int64_t begin = static_cast<std::int64_t>(item) * kRowsPerCheapItem;
  const std::int64_t end = std::min(rows, begin + kRowsPerCheapItem);
  for (std::int64_t r = begin; r < end; ++r) {
    const float* h = p.s->h.data() + r * 2 * I;
    float* a = p.s->a.data() + r * I;
    for (std::int64_t j = 0; j < I; ++j) {
      const float gate = h[2 * j];
      a[j] = gate / (1.0f + std::exp(-gate)) * h[2 * j + 1];
    }
  }
  p.isa->quantize_rows(p.s->a.data(), I, begin, end, p.s->a_rows);
}

// y[t] = sum over t's choices, in routing order, of w · o[row].
void combine_item(void* data, std::size_t item) {
  auto& p = *static_cast<Pass*>(data);
  const std::int64_t H = p.w->shape.hidden_size, k = p.w->shape.k;
  const std::int64_t begin = static_cast<std::int64_t>(item) * kRowsPerCheapItem;
  for (std::int64_t t = begin; t < std::min(p.tokens, begin + kRowsPerCheapItem); ++t) {
    float* y = p.y + t * H;
    std::fill(y, y + H, 0.0f);
    for (std::int64_t j = 0; j < k; ++j) {
      const float weight = p.s->pair_weight[t * k + j];
      const float* o = p.s->o.data() + p.s->pair_row[t * k + j] * H;
      for (std::int64_t i = 0; i < H; ++i) y[i] += weight * o[i];
    }
  }
}

std::size_t cheap_items(std::int64_t rows) {
  return static_cast<std::size_t>((rows + kRowsPerCheapItem - 1) / kRowsPerCheapItem);
}

// Runs fn over `total` items; one item runs inline (ParallelFor has a per-call cost).
void run(const Parallelism& parallel, std::size_t total, void (*fn)(void*, std::size_t), Pass& pass) {
  if (total == 1) {
    fn(&pass, 0);
  } else if (total > 1) {
    parallel.run(parallel.context, total, fn, &pass);
  }
}

void run_pass(Pass& pass, const float* logits, const Parallelism& parallel) {
  const MoEShape& shape = pass.w->shape;
  Scratch& s = *pass.s;
  const std::int64_t rows = pass.tokens * shape.k;
  route(shape, logits, pass.tokens, s);

  prepare_activations(pass.tokens, shape.fc1().k_padded(), s.x_tokens);
  run(parallel, cheap_items(pass.tokens), quantize_tokens_item, pass);
  prepare_activations(rows, shape.fc1().k_padded(), s.x_rows);
  gather_rows(s);

  s.h.resize(static_cast<std::size_t>(rows * 2 * shape.intermediate_size));
  make_items(shape, shape.fc1().n_tiles(), s);
  pass.fc2 = false;
  run(parallel, s.items.size(), matmul_item, pass);

  s.a.resize(static_cast<std::size_t>(rows * shape.intermediate_size));
  prepare_activations(rows, shape.fc2().k_padded(), s.a_rows);
  run(parallel, cheap_items(rows), swiglu_item, pass);

  s.o.resize(static_cast<std::size_t>(rows * shape.hidden_size));
  make_items(shape, shape.fc2().n_tiles(), s);
  pass.fc2 = true;
  run(parallel, s.items.size(), matmul_item, pass);

  run(parallel, cheap_items(pass.tokens), combine_item, pass);
}

}  // namespace

void validate(const MoEShape& shape, const char* where) {
  if (shape.num_experts < 1 || shape.k < 1 || shape.k > shape.num_experts) {
    throw_error(ErrorKind::usage, where, "num_experts, k", "num_experts >= 1 and 1 <= k <= num_experts",
                std::to_string(shape.num_experts) + ", " + std::to_string(shape.k));
  }
  validate(shape.fc1(), where);
  validate(shape.fc2(), where);
}

PackedWeightsView MoEWeights::fc1_expert(std::int64_t e) const {
  const QuantLinearShape s = shape.fc1();
  return {s, fc1 + e * s.weight_bytes(), fc1_scales + e * s.scale_count(),
          fc1_zero_points ? fc1_zero_points + e * s.scale_count() : nullptr};
}

PackedWeightsView MoEWeights::fc2_expert(std::int64_t e) const {
  const QuantLinearShape s = shape.fc2();
  return {s, fc2 + e * s.weight_bytes(), fc2_scales + e * s.scale_count(),
          fc2_zero_points ? fc2_zero_points + e * s.scale_count() : nullptr};
}

void moe(const MoEWeights& w, const float* x, const float* router_logits, std::int64_t tokens, float* y,
         const Parallelism& parallel) {
  thread_local Scratch scratch;
  const std::int64_t H = w.shape.hidden_size, E = w.shape.num_experts;
  for (std::int64_t t0 = 0; t0 < tokens; t0 += kTokensPerPass) {
    Pass pass{&isa_kernels(active_isa()), &w, x + t0 * H, std::min(kTokensPerPass, tokens - t0), y + t0 * H,
              &scratch, false};
    run_pass(pass, router_logits + t0 * E, parallel);
  }
}

}  // namespace q3vl::kernels
