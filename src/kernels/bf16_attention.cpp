// bf16_attention: pack q, k and v^T of every (batch entry, head) to bf16 once, then for
// each block of queries: scores = q k^T on the panel kernels, the softmax row by row
// (weights rounded to bf16), o = weights · v on the panel kernels, divided by Z.
#include "kernels/bf16_attention.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/bf16_linear.h"
#include "kernels/bf16_paths.h"
#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

// Queries per work item: 4 panels of 6 rows; L = 784 gives 33 items per head.
constexpr std::int64_t kQueryRowsPerItem = 4 * kBf16PanelRows;

struct Job {
  const Bf16AttentionArgs* a;
  const Bf16Kernels* kernels;
  std::int64_t width;      // num_heads · head_dim
  std::int64_t d_pairs;    // head_dim / 2
  std::int64_t key_tiles;  // ceil(L / 16)
  std::int64_t l_pairs;    // ceil(L / 2)
  std::int64_t d_tiles;    // ceil(head_dim / 16)
  std::int64_t query_blocks;
  std::uint16_t* q;   // per (b, h): [L, head_dim]
  std::uint16_t* k;   // per (b, h): [key_tiles, d_pairs, 16, 2]
  std::uint16_t* vt;  // per (b, h): [d_tiles, l_pairs, 16, 2]

  std::int64_t q_size() const { return a->length * a->shape.head_dim; }
  std::int64_t k_size() const { return key_tiles * d_pairs * kTileRows * 2; }
  std::int64_t vt_size() const { return d_tiles * l_pairs * kTileRows * 2; }
};

void pack_item(void* data, std::size_t item) {
  const auto& job = *static_cast<Job*>(data);
  const Bf16AttentionArgs& a = *job.a;
  const std::int64_t heads = a.shape.num_heads, d = a.shape.head_dim, L = a.length;
  const auto i = static_cast<std::int64_t>(item);
  const std::int64_t b = i / heads, h = i % heads;
  // Row l of head h of tensor t, rounded to bf16 into out [d].
  auto round = [&](const float* t, std::int64_t l, std::uint16_t* out) {
    job.kernels->round_row(t + (b * L + l) * job.width + h * d, d, out);
  };
  std::uint16_t* q = job.q + i * job.q_size();
  for (std::int64_t l = 0; l < L; ++l) round(a.q, l, q + l * d);
  thread_local std::vector<std::uint16_t> rows;
  rows.resize(static_cast<std::size_t>(L * d));
  // Keys: row l of the first product's matrix, pairs along head_dim.
  for (std::int64_t l = 0; l < L; ++l) round(a.k, l, rows.data() + l * d);
  std::uint16_t* k = job.k + i * job.k_size();
  for (std::int64_t t = 0; t < job.key_tiles; ++t) {
    for (std::int64_t p = 0; p < job.d_pairs; ++p) {
      std::uint16_t* vector = k + (t * job.d_pairs + p) * kTileRows * 2;
      for (std::int64_t r = 0; r < kTileRows; ++r) {
        const std::int64_t l = t * kTileRows + r;
        vector[2 * r] = l < L ? rows[static_cast<std::size_t>(l * d + 2 * p)] : 0;
        vector[2 * r + 1] = l < L ? rows[static_cast<std::size_t>(l * d + 2 * p + 1)] : 0;
      }
    }
  }
  // Values transposed: row c of the second product's matrix, pairs along the keys.
  for (std::int64_t l = 0; l < L; ++l) round(a.v, l, rows.data() + l * d);
  std::uint16_t* vt = job.vt + i * job.vt_size();
  for (std::int64_t t = 0; t < job.d_tiles; ++t) {
    for (std::int64_t p = 0; p < job.l_pairs; ++p) {
      std::uint16_t* vector = vt + (t * job.l_pairs + p) * kTileRows * 2;
      for (std::int64_t r = 0; r < kTileRows; ++r) {
        const std::int64_t c = t * kTileRows + r;
        for (std::int64_t j = 0; j < 2; ++j) {
          const std::int64_t l = 2 * p + j;
          vector[2 * r + j] = c < d && l < L ? rows[static_cast<std::size_t>(l * d + c)] : 0;
        }
      }
    }
  }
}

// Runs `panel` (x, rows, k_pairs and out set) over the `tiles` tiles of matrix w (each
// k_pairs pair vectors long), kBf16PanelTiles at a time; after each run, store(column0,
// columns) takes panel.out's first `columns` of `width` columns from column0 on.
template <typename Store>
void for_each_panel(const Bf16Kernels& kernels, Bf16Panel& panel, const std::uint16_t* w, std::int64_t tiles,
                    std::int64_t width, Store store) {
  panel.tile_stride = panel.k_pairs * kTileRows * 2;
  for (std::int64_t t0 = 0; t0 < tiles; t0 += kBf16PanelTiles) {
    panel.w = w + t0 * panel.tile_stride;
    panel.tiles = std::min(kBf16PanelTiles, tiles - t0);
    kernels.panel(panel);
    const std::int64_t column0 = t0 * kTileRows;
    store(column0, std::min(kBf16PanelWidth, width - column0));
  }
}

void attend_item(void* data, std::size_t item) {
  const auto& job = *static_cast<Job*>(data);
  const Bf16AttentionArgs& a = *job.a;
  const std::int64_t heads = a.shape.num_heads, d = a.shape.head_dim, L = a.length;
  const auto i = static_cast<std::int64_t>(item);
  const std::int64_t bh = i / job.query_blocks, block = i % job.query_blocks;
  const std::int64_t b = bh / heads, h = bh % heads;
  const std::int64_t row_end = std::min(L, (block + 1) * kQueryRowsPerItem);
  const std::int64_t p_stride = 2 * job.l_pairs;
  // Per calling thread, reused across items and calls.
  thread_local std::vector<float> scores;
  thread_local std::vector<std::uint16_t> weights;
  scores.resize(static_cast<std::size_t>(kBf16PanelRows * L));
  weights.resize(static_cast<std::size_t>(kBf16PanelRows * p_stride));
  alignas(64) float out[kBf16PanelRows * kBf16PanelWidth];
  float z[kBf16PanelRows];
  const std::uint16_t* q = job.q + bh * job.q_size();
  const std::uint16_t* k = job.k + bh * job.k_size();
  const std::uint16_t* vt = job.vt + bh * job.vt_size();
  for (std::int64_t m = block * kQueryRowsPerItem; m < row_end; m += kBf16PanelRows) {
    Bf16Panel panel;
    panel.rows = std::min(kBf16PanelRows, row_end - m);
    panel.out = out;
    // scores [rows, L] = q k^T, 64 keys a panel.
    panel.x = q + m * d;
    panel.x_stride = d;
    panel.k_pairs = job.d_pairs;
    for_each_panel(*job.kernels, panel, k, job.key_tiles, L, [&](std::int64_t l0, std::int64_t columns) {
      for (std::int64_t r = 0; r < panel.rows; ++r) {
        std::copy(out + r * kBf16PanelWidth, out + r * kBf16PanelWidth + columns, scores.data() + r * L + l0);
      }
    });
    for (std::int64_t r = 0; r < panel.rows; ++r) {
      z[r] = job.kernels->softmax_row(scores.data() + r * L, L, a.shape.scale, weights.data() + r * p_stride);
    }
    // o [rows, d] = weights v, divided by Z.
    panel.x = weights.data();
    panel.x_stride = p_stride;
    panel.k_pairs = job.l_pairs;
    for_each_panel(*job.kernels, panel, vt, job.d_tiles, d, [&](std::int64_t c0, std::int64_t columns) {
      for (std::int64_t r = 0; r < panel.rows; ++r) {
        float* o = a.out + (b * L + m + r) * job.width + h * d + c0;
        const float inverse = 1.0f / z[r];
        for (std::int64_t c = 0; c < columns; ++c) o[c] = out[r * kBf16PanelWidth + c] * inverse;
      }
    });
  }
}

}  // namespace

void validate(const Bf16AttentionShape& shape, const char* where) {
  if (shape.num_heads <= 0 || shape.head_dim <= 0 || shape.head_dim % 2 != 0) {
    throw_error(ErrorKind::usage, where, "num_heads, head_dim", "positive, head_dim even",
                std::to_string(shape.num_heads) + ", " + std::to_string(shape.head_dim));
  }
  if (!(std::isfinite(shape.scale) && shape.scale > 0.0f)) {
    throw_error(ErrorKind::usage, where, "scale", "a finite positive number", std::to_string(shape.scale));
  }
}

void bf16_attention(const Bf16AttentionArgs& args, const Parallelism& parallel) {
  if (args.batch <= 0 || args.length <= 0) return;
  const std::int64_t d = args.shape.head_dim, heads = args.shape.num_heads;
  Job job{};
  job.a = &args;
  job.kernels = &bf16_kernels(active_bf16_path());
  job.width = heads * d;
  job.d_pairs = d / 2;
  job.key_tiles = (args.length + kTileRows - 1) / kTileRows;
  job.l_pairs = (args.length + 1) / 2;
  job.d_tiles = (d + kTileRows - 1) / kTileRows;
  job.query_blocks = (args.length + kQueryRowsPerItem - 1) / kQueryRowsPerItem;
  const std::int64_t pairs = args.batch * heads;
  std::vector<std::uint16_t> q(static_cast<std::size_t>(pairs * job.q_size()));
  std::vector<std::uint16_t> k(static_cast<std::size_t>(pairs * job.k_size()));
  std::vector<std::uint16_t> vt(static_cast<std::size_t>(pairs * job.vt_size()));
  job.q = q.data();
  job.k = k.data();
  job.vt = vt.data();
  parallel.run(parallel.context, static_cast<std::size_t>(pairs), pack_item, &job);
  parallel.run(parallel.context, static_cast<std::size_t>(pairs * job.query_blocks), attend_item, &job);
}

}  // namespace q3vl::kernels
