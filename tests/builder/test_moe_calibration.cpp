// builder/moe_calibration.h: GPTQ's per-expert statistics for a sparse MoE block, against
// double-precision references written here from HF's math (softmax router, top-k,
// silu(gate x) * up x): the routing, the activations, each expert's H1 = sum x x^T over
// its routed rows and H2 = sum a a^T, and GPTQ with those statistics against a
// double-precision GPTQ column walk (the paper's algorithm, unbatched) on small matrices.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "builder/calibration_stats.h"
#include "builder/gptq.h"
#include "builder/moe_calibration.h"
#include "builder/quantize.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

std::vector<float> gaussian(std::size_t n, unsigned seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Rows with correlated features (x = z A) and a few large channels, like real activations.
std::vector<float> correlated_rows(std::int64_t n, std::int64_t h, unsigned seed) {
  const auto z = gaussian(static_cast<std::size_t>(n * h), seed);
  const auto a = gaussian(static_cast<std::size_t>(h * h), 4321, 1.0f / std::sqrt(static_cast<float>(h)));
  std::vector<float> x(static_cast<std::size_t>(n * h), 0.0f);
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t i = 0; i < h; ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < h; ++j) s += double(z[r * h + j]) * a[j * h + i];
      x[r * h + i] = static_cast<float>(s * (i % 13 == 5 ? 5.0 : 1.0));
    }
  }
  return x;
}

// HF's router in double: softmax over all experts, the k largest probabilities.
std::vector<std::vector<std::int64_t>> reference_routes(const std::vector<float>& x, std::int64_t h,
                                                        const std::vector<float>& router, std::int64_t e,
                                                        std::int64_t k) {
  const auto n = static_cast<std::int64_t>(x.size()) / h;
  std::vector<std::vector<std::int64_t>> routed(static_cast<std::size_t>(e));
  for (std::int64_t r = 0; r < n; ++r) {
    std::vector<double> p(static_cast<std::size_t>(e));
    double top = -1e300, sum = 0;
    for (std::int64_t j = 0; j < e; ++j) {
      for (std::int64_t i = 0; i < h; ++i) p[j] += double(x[r * h + i]) * router[j * h + i];
      top = std::max(top, p[j]);
    }
    for (auto& v : p) sum += (v = std::exp(v - top));
    for (auto& v : p) v /= sum;
    std::vector<std::int64_t> order(static_cast<std::size_t>(e));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return p[a] > p[b]; });
    for (std::int64_t i = 0; i < k; ++i) routed[static_cast<std::size_t>(order[i])].push_back(r);
  }
  return routed;
}

double max_relative(const std::vector<double>& got, const std::vector<double>& want) {
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    diff = std::max(diff, std::abs(got[i] - want[i]));
  }
  return diff / std::max(scale, 1e-30);
}

TEST(MoeCalibration, RoutingIsTheTopKOfTheRouter) {
  // Hand-worked: logits of x = [1, 0] are [1, 1, 0]: a tie goes to the lower index.
  EXPECT_EQ(route_rows(std::vector<float>{1, 0}, 2, std::vector<float>{1, 0, 1, 0, 0, 1}, 3, 1),
            (std::vector<std::vector<std::int64_t>>{{0}, {}, {}}));
  // x rows [0, 2] and [3, -1]; logits [2, -2, 0.5] and [-1, 1, 3.5]; top-2 {0, 2} and {2, 1}.
  EXPECT_EQ(route_rows(std::vector<float>{0, 2, 3, -1}, 2, std::vector<float>{0, 1, 0, -1, 1, 0.25f}, 3, 2),
            (std::vector<std::vector<std::int64_t>>{{0}, {1}, {0, 1}}));
  // Random rows against the double-precision softmax router.
  const std::int64_t n = 300, h = 48, e = 8, k = 3;
  const auto x = correlated_rows(n, h, 1);
  const auto router = gaussian(static_cast<std::size_t>(e * h), 2, 0.3f);
  const auto routed = route_rows(x, h, router, e, k);
  EXPECT_EQ(routed, reference_routes(x, h, router, e, k));
  std::int64_t total = 0;
  for (const auto& rows : routed) total += static_cast<std::int64_t>(rows.size());
  EXPECT_EQ(total, n * k);
  EXPECT_THROW(route_rows(x, h, router, e, 0), Error);
  EXPECT_THROW(route_rows(x, h, router, e + 1, k), Error);
  EXPECT_THROW(route_rows(std::vector<float>(5), h, router, e, k), Error);
}

TEST(MoeCalibration, ActivationsAreSiluGateTimesUp) {
  const std::int64_t n = 7, h = 40, inter = 12;
  const auto x = gaussian(static_cast<std::size_t>(n * h), 3);
  const auto fc1 = gaussian(static_cast<std::size_t>(2 * inter * h), 4, 0.2f);  // rows gate 0, up 0, gate 1, ...
  const auto a = swiglu_activations(x, h, fc1, inter);
  ASSERT_EQ(a.size(), static_cast<std::size_t>(n * inter));
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t j = 0; j < inter; ++j) {
      double gate = 0, up = 0;
      for (std::int64_t i = 0; i < h; ++i) {
        gate += double(x[r * h + i]) * fc1[(2 * j) * h + i];
        up += double(x[r * h + i]) * fc1[(2 * j + 1) * h + i];
      }
      const double want = gate / (1 + std::exp(-gate)) * up;
      EXPECT_NEAR(a[r * inter + j], want, 1e-5 * std::max(1.0, std::abs(want))) << r << "," << j;
    }
  }
  EXPECT_EQ(gather_rows(std::vector<float>{1, 2, 3, 4, 5, 6}, 2, {2, 0}), (std::vector<float>{5, 6, 1, 2}));
  EXPECT_THROW(gather_rows(std::vector<float>{1, 2}, 2, {1}), Error);
  EXPECT_THROW(swiglu_activations(x, h, std::vector<float>(10), inter), Error);
}

// The paper's GPTQ in double, one column at a time: H' = H + 1 % of its mean diagonal
// (an unseen input, zero diagonal, counting as the mean), U = upper Cholesky factor of
// H'^-1, block parameters chosen (quantize.h, mse) from the updated weights as each block
// starts, each column's error e = (w - q) / U[j, j] moved onto the later columns by U[j, :].
std::vector<float> reference_gptq(const std::vector<float>& w, std::int64_t n, std::int64_t k,
                                  const std::vector<double>& h, const QuantOptions& o) {
  double mean = 0;
  for (std::int64_t i = 0; i < k; ++i) mean += h[i * k + i];
  mean /= double(k);
  std::vector<double> a = h;
  for (std::int64_t i = 0; i < k; ++i) {
    if (a[i * k + i] == 0) a[i * k + i] = mean;
    a[i * k + i] += 0.01 * mean;
  }
  // Inverse by Gauss-Jordan, then its upper Cholesky factor U (H'^-1 = U^T U).
  std::vector<double> inv(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t i = 0; i < k; ++i) inv[i * k + i] = 1;
  for (std::int64_t c = 0; c < k; ++c) {
    const double pivot = a[c * k + c];
    for (std::int64_t j = 0; j < k; ++j) {
      a[c * k + j] /= pivot;
      inv[c * k + j] /= pivot;
    }
    for (std::int64_t r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = a[r * k + c];
      for (std::int64_t j = 0; j < k; ++j) {
        a[r * k + j] -= f * a[c * k + j];
        inv[r * k + j] -= f * inv[c * k + j];
      }
    }
  }
  std::vector<double> u(static_cast<std::size_t>(k * k), 0.0);
  for (std::int64_t i = 0; i < k; ++i) {
    double d = inv[i * k + i];
    for (std::int64_t p = 0; p < i; ++p) d -= u[p * k + i] * u[p * k + i];
    u[i * k + i] = std::sqrt(d);
    for (std::int64_t j = i + 1; j < k; ++j) {
      double s = inv[i * k + j];
      for (std::int64_t p = 0; p < i; ++p) s -= u[p * k + i] * u[p * k + j];
      u[i * k + j] = s / u[i * k + i];
    }
  }
  QuantOptions m = o;
  m.method = QuantMethod::mse;
  const int max_q = (1 << o.bits) - 1;
  std::vector<float> out(w.size());
  for (std::int64_t r = 0; r < n; ++r) {
    std::vector<double> row(w.begin() + r * k, w.begin() + (r + 1) * k);
    BlockParams p;
    for (std::int64_t j = 0; j < k; ++j) {
      if (j % o.block_size == 0) {
        std::vector<float> block(row.begin() + j, row.begin() + j + o.block_size);
        p = choose_block_params(block, m);
      }
      const int code = quantize_value(static_cast<float>(row[j]), p, max_q);
      const double q = double(code - p.zero_point) * p.scale;
      out[r * k + j] = static_cast<float>(q);
      const double e = (row[j] - q) / u[j * k + j];
      for (std::int64_t t = j + 1; t < k; ++t) row[t] -= e * u[j * k + t];
    }
  }
  return out;
}

// sum over rows x of |x (W - Q)^T|^2 for rows x [m, k].
double output_error(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& q,
                    std::int64_t n, std::int64_t k) {
  const auto m = static_cast<std::int64_t>(x.size()) / k;
  double total = 0;
  for (std::int64_t r = 0; r < m; ++r) {
    for (std::int64_t o = 0; o < n; ++o) {
      double s = 0;
      for (std::int64_t i = 0; i < k; ++i) s += double(x[r * k + i]) * (double(w[o * k + i]) - q[o * k + i]);
      total += s * s;
    }
  }
  return total;
}

// One small block, E = 4 experts of top-2, H = 64, I = 32: each expert's statistics from
// the rows routed to it equal the double-precision sums, and GPTQ with them matches the
// double-precision GPTQ and beats mse on held-out rows routed to that expert.
TEST(MoeCalibration, PerExpertStatisticsAndGptqMatchDoublePrecision) {
  const std::int64_t e = 4, k = 2, h = 64, inter = 32;
  const auto x = correlated_rows(600, h, 5);
  const auto held_out = correlated_rows(600, h, 6);
  const auto router = gaussian(static_cast<std::size_t>(e * h), 7, 0.2f);
  const auto routed = route_rows(x, h, router, e, k);
  const auto routed_held_out = route_rows(held_out, h, router, e, k);
  QuantOptions o;
  o.bits = 4;
  o.block_size = 32;
  o.method = QuantMethod::gptq;
  o.threads = 1;
  for (std::int64_t expert = 0; expert < e; ++expert) {
    SCOPED_TRACE("expert " + std::to_string(expert));
    const auto& rows = routed[static_cast<std::size_t>(expert)];
    ASSERT_GT(rows.size(), 100u);  // every expert gets a share of 600 rows x top-2 of 4
    const auto fc1 = gaussian(static_cast<std::size_t>(2 * inter * h), 10 + static_cast<unsigned>(expert), 0.125f);
    const auto fc2 = gaussian(static_cast<std::size_t>(h * inter), 20 + static_cast<unsigned>(expert), 0.18f);

    // H1 and H2 against double-precision sums over the same rows.
    const auto xe = gather_rows(x, h, rows);
    const auto h1 = gram(xe, h);
    std::vector<double> want1(static_cast<std::size_t>(h * h), 0.0), want2(static_cast<std::size_t>(inter * inter), 0.0);
    std::vector<float> ae;
    for (const std::int64_t r : rows) {
      for (std::int64_t i = 0; i < h; ++i) {
        for (std::int64_t j = 0; j < h; ++j) want1[i * h + j] += double(x[r * h + i]) * x[r * h + j];
      }
      std::vector<double> a(static_cast<std::size_t>(inter));
      for (std::int64_t j = 0; j < inter; ++j) {
        double gate = 0, up = 0;
        for (std::int64_t i = 0; i < h; ++i) {
          gate += double(x[r * h + i]) * fc1[(2 * j) * h + i];
          up += double(x[r * h + i]) * fc1[(2 * j + 1) * h + i];
        }
        a[j] = gate / (1 + std::exp(-gate)) * up;
      }
      for (std::int64_t i = 0; i < inter; ++i) {
        for (std::int64_t j = 0; j < inter; ++j) want2[i * inter + j] += a[i] * a[j];
      }
    }
    EXPECT_LT(max_relative(h1, want1), 1e-5);
    const auto activations = swiglu_activations(xe, h, fc1, inter);
    const auto h2 = gram(activations, inter);
    EXPECT_LT(max_relative(h2, want2), 1e-5);

    // GPTQ with each statistic against the double-precision walk: the same levels up to
    // float rounding near a level boundary, the same output error to 1 %; both under
    // mse's on rows the calibration never saw.
    struct Matrix {
      const char* name;
      const std::vector<float>& w;
      std::int64_t n, k;
      const std::vector<double>& stats;
      std::vector<float> held_out;  // inputs [m, k] of held-out rows routed to this expert
      double max_ratio_to_mse;      // measured 2026-12-05: fc1 0.59-0.62, fc2 0.77-0.93
    };
    const auto held_x = gather_rows(held_out, h, routed_held_out[static_cast<std::size_t>(expert)]);
    // fc2's inputs (swiglu activations) are less correlated than fc1's, so GPTQ gains less.
    for (const Matrix& m : {Matrix{"fc1", fc1, 2 * inter, h, h1, held_x, 0.7},
                            Matrix{"fc2", fc2, h, inter, h2, swiglu_activations(held_x, h, fc1, inter), 0.97}}) {
      const auto ours = dequantize(quantize_gptq(m.w, m.n, m.k, m.stats, o));
      const auto want = reference_gptq(m.w, m.n, m.k, m.stats, o);
      std::int64_t differ = 0;
      // A level differs by a whole step; float vs double sums move a block's scale by ~1e-7.
      for (std::size_t i = 0; i < ours.size(); ++i) differ += std::abs(ours[i] - want[i]) > 1e-4f * std::abs(want[i]) + 1e-6f;
      QuantOptions mse = o;
      mse.method = QuantMethod::mse;
      const auto rounded = dequantize(quantize_blockwise(m.w, m.n, m.k, mse));
      const double e_ours = output_error(m.held_out, m.w, ours, m.n, m.k);
      const double e_want = output_error(m.held_out, m.w, want, m.n, m.k);
      const double e_mse = output_error(m.held_out, m.w, rounded, m.n, m.k);
      std::printf("[moe gptq expert %lld %s] levels differing from double %lld/%zu; held-out error gptq %.4g, "
                  "double gptq %.4g, mse %.4g\n",
                  static_cast<long long>(expert), m.name, static_cast<long long>(differ), ours.size(), e_ours, e_want,
                  e_mse);
      EXPECT_LE(differ, static_cast<std::int64_t>(ours.size() / 100)) << m.name;
      EXPECT_NEAR(e_ours, e_want, 0.01 * e_want) << m.name;
      EXPECT_LT(e_ours, m.max_ratio_to_mse * e_mse) << m.name;
    }
  }
}

}  // namespace
}  // namespace q3vl::builder
