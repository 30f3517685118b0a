// bf16_linear: round x to bf16 once, then run the active path's panel kernel over
// (row chunk, tile group) work items and add the bias on the way out.
#include "kernels/bf16_linear.h"

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/bf16_paths.h"
#include "kernels/dispatch.h"
#include "q3vl/error.h"

namespace q3vl::kernels {
namespace {

// Rows of x per work item: 96 bf16 rows of K = 1024 (192 KB) stay in L2 while a tile
// group's weights (K = 1024: 128 KB) sweep over them, panel by panel.
constexpr std::int64_t kRowsPerItem = 16 * kBf16PanelRows;
// Activation rows rounded to bf16 per work item.
constexpr std::int64_t kConvertRowsPerItem = 32;

struct Job {
  const Bf16Kernels* kernels;
  const Bf16WeightsView* w;
  const float* x;
  std::int64_t m;
  const float* bias;
  float* y;
  std::uint16_t* xb;  // [m, 2 · k_pairs]
  std::int64_t tile_groups;
};

void convert_item(void* data, std::size_t item) {
  auto& job = *static_cast<Job*>(data);
  const std::int64_t k = job.w->shape.k, stride = 2 * job.w->shape.k_pairs();
  const std::int64_t begin = static_cast<std::int64_t>(item) * kConvertRowsPerItem;
  const std::int64_t end = std::min(job.m, begin + kConvertRowsPerItem);
  for (std::int64_t r = begin; r < end; ++r) {
    std::uint16_t* to = job.xb + r * stride;
    job.kernels->round_row(job.x + r * k, k, to);
    if (stride > k) to[k] = 0;
  }
}

void gemm_item(void* data, std::size_t item) {
  auto& job = *static_cast<Job*>(data);
  const Bf16LinearShape& shape = job.w->shape;
  const auto i = static_cast<std::int64_t>(item);
  const std::int64_t row_chunk = i / job.tile_groups, group = i % job.tile_groups;
  const std::int64_t m_end = std::min(job.m, (row_chunk + 1) * kRowsPerItem);
  const std::int64_t t_begin = group * kBf16PanelTiles;
  const std::int64_t tile_stride = shape.k_pairs() * kTileRows * 2;
  const std::int64_t n_begin = t_begin * kTileRows;
  const std::int64_t columns = std::min(shape.n - n_begin, kBf16PanelWidth);
  alignas(64) float out[kBf16PanelRows * kBf16PanelWidth];
  Bf16Panel panel;
  panel.x_stride = 2 * shape.k_pairs();
  panel.w = job.w->weight + t_begin * tile_stride;
  panel.tile_stride = tile_stride;
  panel.tiles = std::min(shape.n_tiles() - t_begin, kBf16PanelTiles);
  panel.k_pairs = shape.k_pairs();
  panel.out = out;
  for (std::int64_t m = row_chunk * kRowsPerItem; m < m_end; m += kBf16PanelRows) {
    panel.x = job.xb + m * panel.x_stride;
    panel.rows = std::min(kBf16PanelRows, m_end - m);
    job.kernels->panel(panel);
    for (std::int64_t r = 0; r < panel.rows; ++r) {
      float* y = job.y + (m + r) * shape.n + n_begin;
      const float* acc = out + r * kBf16PanelWidth;
      if (job.bias == nullptr) {
        std::copy(acc, acc + columns, y);
      } else {
        for (std::int64_t c = 0; c < columns; ++c) y[c] = acc[c] + job.bias[n_begin + c];
      }
    }
  }
}

bool cpu_has_avx512bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
}

}  // namespace

void validate(const Bf16LinearShape& shape, const char* where) {
  if (shape.n <= 0 || shape.k <= 0) {
    throw_error(ErrorKind::usage, where, "N, K", "positive sizes",
                std::to_string(shape.n) + ", " + std::to_string(shape.k));
  }
}

void pack_bf16(const Bf16LinearShape& shape, const float* w, std::uint16_t* out) {
  const std::int64_t pairs = shape.k_pairs();
  for (std::int64_t t = 0; t < shape.n_tiles(); ++t) {
    for (std::int64_t p = 0; p < pairs; ++p) {
      std::uint16_t* vector = out + (t * pairs + p) * kTileRows * 2;
      for (std::int64_t r = 0; r < kTileRows; ++r) {
        const std::int64_t row = t * kTileRows + r;
        for (std::int64_t j = 0; j < 2; ++j) {
          const std::int64_t col = 2 * p + j;
          vector[2 * r + j] = row < shape.n && col < shape.k ? to_bf16(w[row * shape.k + col]) : 0;
        }
      }
    }
  }
}

const char* to_string(Bf16Path path) {
  switch (path) {
    case Bf16Path::scalar: return "scalar";
    case Bf16Path::avx2: return "avx2";
    case Bf16Path::avx512bf16: return "avx512bf16";
  }
  return "?";
}

const Bf16Kernels& bf16_kernels(Bf16Path path) {
  switch (path) {
    case Bf16Path::avx512bf16: return kBf16Avx512Kernels;
    case Bf16Path::avx2: return kBf16Avx2Kernels;
    case Bf16Path::scalar: break;
  }
  return kBf16ScalarKernels;
}

Bf16Path active_bf16_path() {
  switch (active_isa()) {
    case Isa::avx512vnni: return cpu_has_avx512bf16() ? Bf16Path::avx512bf16 : Bf16Path::avx2;
    case Isa::avx2: return Bf16Path::avx2;
    case Isa::scalar: break;
  }
  return Bf16Path::scalar;
}

void bf16_linear(const Bf16WeightsView& w, const float* x, std::int64_t m, const float* bias, float* y,
                 const Parallelism& parallel) {
  if (m <= 0) return;
  // One buffer per calling thread, reused across calls (ONNX Runtime never runs two
  // nodes on one thread at once).
  thread_local std::vector<std::uint16_t> xb;
  xb.resize(static_cast<std::size_t>(m * 2 * w.shape.k_pairs()));
  Job job{&bf16_kernels(active_bf16_path()), &w, x, m, bias, y, xb.data(),
          (w.shape.n_tiles() + kBf16PanelTiles - 1) / kBf16PanelTiles};
  parallel.run(parallel.context, static_cast<std::size_t>((m + kConvertRowsPerItem - 1) / kConvertRowsPerItem),
               convert_item, &job);
  const std::int64_t row_chunks = (m + kRowsPerItem - 1) / kRowsPerItem;
  parallel.run(parallel.context, static_cast<std::size_t>(row_chunks * job.tile_groups), gemm_item, &job);
}

}  // namespace q3vl::kernels
