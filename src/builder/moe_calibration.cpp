#include "builder/moe_calibration.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "builder/blas.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

void require_rows(std::span<const float> x, std::int64_t width, const char* what) {
  if (width <= 0 || x.size() % static_cast<std::size_t>(width) != 0) {
    throw_error(ErrorKind::usage, "", what, "rows of " + std::to_string(width) + " values",
                std::to_string(x.size()) + " values");
  }
}

}  // namespace

std::vector<std::vector<std::int64_t>> route_rows(std::span<const float> x, std::int64_t hidden,
                                                  std::span<const float> router, std::int64_t experts,
                                                  std::int64_t k) {
  require_rows(x, hidden, "route_rows x");
  if (experts <= 0 || static_cast<std::int64_t>(router.size()) != experts * hidden) {
    throw_error(ErrorKind::usage, "", "route_rows router", "[" + std::to_string(experts) + ", " +
                std::to_string(hidden) + "]", std::to_string(router.size()) + " values");
  }
  if (k < 1 || k > experts) {
    throw_error(ErrorKind::usage, "", "route_rows k", "1.." + std::to_string(experts), std::to_string(k));
  }
  const auto n = static_cast<std::int64_t>(x.size()) / hidden;
  std::vector<std::vector<std::int64_t>> routed(static_cast<std::size_t>(experts));
  if (n == 0) return routed;
  // logits [n, E] = x Wr^T, float32 as the graph's router MatMul.
  std::vector<float> logits(static_cast<std::size_t>(n * experts));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(experts),
              static_cast<int>(hidden), 1.0f, x.data(), static_cast<int>(hidden), router.data(),
              static_cast<int>(hidden), 0.0f, logits.data(), static_cast<int>(experts));
  std::vector<std::int64_t> order(static_cast<std::size_t>(experts));
  for (std::int64_t r = 0; r < n; ++r) {
    const float* row = logits.data() + r * experts;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](std::int64_t a, std::int64_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    for (std::int64_t i = 0; i < k; ++i) routed[static_cast<std::size_t>(order[i])].push_back(r);
  }
  return routed;
}

std::vector<float> gather_rows(std::span<const float> x, std::int64_t width, const std::vector<std::int64_t>& rows) {
  require_rows(x, width, "gather_rows x");
  const auto n = static_cast<std::int64_t>(x.size()) / width;
  std::vector<float> out;
  out.reserve(rows.size() * static_cast<std::size_t>(width));
  for (const std::int64_t r : rows) {
    if (r < 0 || r >= n) {
      throw_error(ErrorKind::usage, "", "gather_rows", "row indices in [0, " + std::to_string(n) + ")",
                  std::to_string(r));
    }
    out.insert(out.end(), x.begin() + r * width, x.begin() + (r + 1) * width);
  }
  return out;
}

std::vector<float> swiglu_activations(std::span<const float> x, std::int64_t hidden, std::span<const float> fc1,
                                      std::int64_t intermediate) {
  require_rows(x, hidden, "swiglu_activations x");
  if (intermediate <= 0 || static_cast<std::int64_t>(fc1.size()) != 2 * intermediate * hidden) {
    throw_error(ErrorKind::usage, "", "swiglu_activations fc1", "[" + std::to_string(2 * intermediate) + ", " +
                std::to_string(hidden) + "]", std::to_string(fc1.size()) + " values");
  }
  const auto n = static_cast<std::int64_t>(x.size()) / hidden;
  const std::int64_t width = 2 * intermediate;
  std::vector<float> fused(static_cast<std::size_t>(n * width));
  if (n > 0) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(width),
                static_cast<int>(hidden), 1.0f, x.data(), static_cast<int>(hidden), fc1.data(),
                static_cast<int>(hidden), 0.0f, fused.data(), static_cast<int>(width));
  }
  std::vector<float> a(static_cast<std::size_t>(n * intermediate));
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t j = 0; j < intermediate; ++j) {
      const float gate = fused[r * width + 2 * j], up = fused[r * width + 2 * j + 1];
      a[r * intermediate + j] = gate / (1.0f + std::exp(-gate)) * up;
    }
  }
  return a;
}

}  // namespace q3vl::builder
