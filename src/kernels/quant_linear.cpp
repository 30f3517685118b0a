// quant_linear / quant_swiglu: quantize x, then run the active ISA's tile kernel over
// (row chunk, tile group) work items; the two differ only in the tile epilogue.
#include "kernels/quant_linear.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/activation_quant.h"
#include "kernels/dispatch.h"
#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

// Rows of x per work item: 64 rows of int8 activations (K = 9728: 620 KB) stay in L2
// while a tile group's weights are applied to them.
constexpr std::int64_t kRowsPerItem = 64;
// Tiles per work item: enough items for load balance (a 2560-wide layer has 40), few
// enough that ParallelFor's per-item cost stays negligible.
constexpr std::int64_t kTilesPerItem = 4;
// Activation rows quantized per work item.
constexpr std::int64_t kQuantRowsPerItem = 16;

struct Job {
  const IsaKernels* isa;
  const PackedWeightsView* w;
  const float* x;
  std::int64_t m;
  TileOutput out;
  QuantizedActivations* a;
  std::int64_t tile_groups;
};

void quantize_item(void* data, std::size_t item) {
  auto& job = *static_cast<Job*>(data);
  const std::int64_t begin = static_cast<std::int64_t>(item) * kQuantRowsPerItem;
  job.isa->quantize_rows(job.x, job.w->shape.k, begin, std::min(job.m, begin + kQuantRowsPerItem), *job.a);
}

void gemm_item(void* data, std::size_t item) {
  auto& job = *static_cast<Job*>(data);
  const auto i = static_cast<std::int64_t>(item);
  const std::int64_t row_chunk = i / job.tile_groups, group = i % job.tile_groups;
  const std::int64_t m_begin = row_chunk * kRowsPerItem, m_end = std::min(job.m, m_begin + kRowsPerItem);
  const std::int64_t t_end = std::min(job.w->shape.n_tiles(), (group + 1) * kTilesPerItem);
  for (std::int64_t t = group * kTilesPerItem; t < t_end; ++t) {
    job.isa->tile_rows(*job.w, *job.a, t, m_begin, m_end, job.out);
  }
}

}  // namespace

const char* to_string(WeightGrid grid) { return grid == WeightGrid::nl ? "nl" : "uniform"; }

void validate(const QuantLinearShape& shape, const char* where) {
  if (shape.bits != 4 && shape.bits != 5 && shape.bits != 6 && shape.bits != 8) {
    throw_error(ErrorKind::usage, where, "bits", "4, 5, 6 or 8", std::to_string(shape.bits));
  }
  if (shape.grid == WeightGrid::nl && shape.bits != 4) {
    throw_error(ErrorKind::usage, where, "grid", "\"uniform\" with bits " + std::to_string(shape.bits) +
                " (\"nl\" needs bits 4)", "\"nl\"");
  }
  if (shape.block_size != 32 && shape.block_size != 64 && shape.block_size != 128) {
    throw_error(ErrorKind::usage, where, "block_size", "32, 64 or 128", std::to_string(shape.block_size));
  }
  if (shape.n <= 0 || shape.k <= 0) {
    throw_error(ErrorKind::usage, where, "N, K", "positive sizes",
                std::to_string(shape.n) + ", " + std::to_string(shape.k));
  }
}

void serial_for(void* /*context*/, std::size_t total, void (*fn)(void*, std::size_t), void* data) {
  for (std::size_t i = 0; i < total; ++i) fn(data, i);
}

namespace {

void run(const PackedWeightsView& w, const float* x, std::int64_t m, const TileOutput& out,
         const Parallelism& parallel) {
  if (m <= 0) return;
  // One buffer per calling thread, reused across calls (no allocation per decode step).
  // ONNX Runtime never runs two nodes on one thread at once.
  thread_local QuantizedActivations activations;
  prepare_activations(m, w.shape.k_padded(), activations);
  Job job{&isa_kernels(active_isa()), &w, x, m, out, &activations,
          (w.shape.n_tiles() + kTilesPerItem - 1) / kTilesPerItem};
  const auto quant_items = static_cast<std::size_t>((m + kQuantRowsPerItem - 1) / kQuantRowsPerItem);
  if (quant_items == 1) {
    quantize_item(&job, 0);
  } else {
    parallel.run(parallel.context, quant_items, quantize_item, &job);
  }
  const std::int64_t row_chunks = (m + kRowsPerItem - 1) / kRowsPerItem;
  parallel.run(parallel.context, static_cast<std::size_t>(row_chunks * job.tile_groups), gemm_item, &job);
}

}  // namespace

void store_tile(const TileOutput& out, const float* lanes, std::int64_t tile, std::int64_t m) {
  float* dst = out.y + m * out.width;
  if (out.kind == TileOutput::Kind::linear) {
    const std::int64_t rows = std::min(kTileRows, out.width - tile * kTileRows);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t n = tile * kTileRows + r;
      dst[n] = lanes[r] + (out.bias ? out.bias[n] : 0.0f);
    }
    return;
  }
  const std::int64_t pairs = std::min(kSwiGLUPairs, out.width - tile * kSwiGLUPairs);
  for (std::int64_t r = 0; r < pairs; ++r) {
    const float g = lanes[r];
    dst[tile * kSwiGLUPairs + r] = g / (1.0f + std::exp(-g)) * lanes[kSwiGLUPairs + r];
  }
}

void quant_linear(const PackedWeightsView& w, const float* x, std::int64_t m, const float* bias, float* y,
                  const Parallelism& parallel) {
  run(w, x, m, TileOutput{TileOutput::Kind::linear, y, w.shape.n, bias}, parallel);
}

void quant_swiglu(const PackedWeightsView& w, std::int64_t intermediate, const float* x, std::int64_t m, float* y,
                  const Parallelism& parallel) {
  run(w, x, m, TileOutput{TileOutput::Kind::swiglu, y, intermediate, nullptr}, parallel);
}

}  // namespace q3vl::kernels
