#include "builder/gptq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr double kDampening = 0.01;  // of the mean diagonal, as in the paper
constexpr int kRowTile = 8;          // rows updated together, so each row of U is read once per tile

// The dampened statistics in reversed order, R = J (H + damp I) J (J reverses the index), so
// that the lower Cholesky factor of R gives H^-1's upper one (see upper_inverse_factor).
std::vector<double> reversed_dampened(std::span<const double> h, std::int64_t k) {
  double mean_diagonal = 0.0;
  for (std::int64_t i = 0; i < k; ++i) mean_diagonal += h[i * k + i];
  mean_diagonal /= static_cast<double>(k);
  if (!(mean_diagonal > 0.0)) mean_diagonal = 1.0;  // no statistics at all: plain mse
  std::vector<double> r(static_cast<std::size_t>(k * k));
  for (std::int64_t i = 0; i < k; ++i) {
    for (std::int64_t j = 0; j < k; ++j) r[(k - 1 - i) * k + (k - 1 - j)] = h[i * k + j];
  }
  for (std::int64_t i = 0; i < k; ++i) {
    double& d = r[i * k + i];
    if (d == 0.0) d = mean_diagonal;  // an input calibration never saw
    d += kDampening * mean_diagonal;
  }
  return r;
}

// In-place lower Cholesky factor of `a` [k, k] (upper triangle left as is). False if `a`
// is not positive definite.
bool cholesky_lower(std::vector<double>& a, std::int64_t k, unsigned threads) {
  for (std::int64_t j = 0; j < k; ++j) {
    const double* row_j = a.data() + j * k;
    double d = row_j[j];
    for (std::int64_t p = 0; p < j; ++p) d -= row_j[p] * row_j[p];
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    const double pivot = std::sqrt(d);
    a[j * k + j] = pivot;
    const std::int64_t below = k - j - 1;
    parallel_rows(static_cast<int>(below), threads, [&](int b0, int b1) {
      for (std::int64_t i = j + 1 + b0; i < j + 1 + b1; ++i) {
        double* row_i = a.data() + i * k;
        double s = row_i[j];
        for (std::int64_t p = 0; p < j; ++p) s -= row_i[p] * row_j[p];
        row_i[j] = s / pivot;
      }
    }, 256);
  }
  return true;
}

// U [k, k] upper, with H^-1 = U^T U. If J H J = L L^T then H^-1 = (J L^-1 J)^T (J L^-1 J)
// and J L^-1 J is upper triangular with a positive diagonal: the factor we want, from one
// Cholesky and one triangular inverse.
std::vector<float> upper_inverse_factor(std::span<const double> h, std::int64_t k, unsigned threads) {
  std::vector<double> l = reversed_dampened(h, k);
  if (!cholesky_lower(l, k, threads)) {
    throw_error(ErrorKind::usage, "", "gptq", "finite, symmetric input statistics (a positive definite H)",
                "a matrix without a Cholesky factor");
  }
  // Column c of L^-1 solves L y = e_c; y is zero above c.
  std::vector<float> u(static_cast<std::size_t>(k * k), 0.0f);
  parallel_rows(static_cast<int>(k), threads, [&](int c0, int c1) {
    std::vector<double> y(static_cast<std::size_t>(k));
    for (std::int64_t c = c0; c < c1; ++c) {
      for (std::int64_t i = c; i < k; ++i) {
        double s = i == c ? 1.0 : 0.0;
        const double* row_i = l.data() + i * k;
        for (std::int64_t p = c; p < i; ++p) s -= row_i[p] * y[p];
        y[i] = s / row_i[i];
      }
      // (L^-1)[i][c] -> U[k-1-i][k-1-c]
      for (std::int64_t i = c; i < k; ++i) u[(k - 1 - i) * k + (k - 1 - c)] = static_cast<float>(y[i]);
    }
  }, 16);
  return u;
}

// Quantizes rows [r0, r1) of w, each walking the columns left to right.
void quantize_row_tile(std::span<const float> w, std::int64_t r0, std::int64_t r1, std::int64_t k,
                       const std::vector<float>& u, const QuantOptions& o, QuantizedMatrix& q) {
  const std::int64_t rows = r1 - r0;
  const std::int64_t bs = o.block_size;
  const int max_q = (1 << o.bits) - 1;
  std::vector<float> work(w.begin() + r0 * k, w.begin() + r1 * k);  // updated weights
  std::vector<float> block(static_cast<std::size_t>(bs));
  std::vector<int> codes(static_cast<std::size_t>(rows * bs));
  std::vector<BlockParams> params(static_cast<std::size_t>(rows));
  float error[kRowTile];
  for (std::int64_t b = 0; b < q.k_blocks; ++b) {
    const std::int64_t begin = b * bs, count = std::min(bs, k - begin);
    for (std::int64_t r = 0; r < rows; ++r) {
      std::fill(block.begin(), block.end(), 0.0f);
      std::copy_n(work.begin() + r * k + begin, count, block.begin());
      params[r] = choose_block_params(block, o);
      std::fill(codes.begin() + r * bs, codes.begin() + (r + 1) * bs, params[r].zero_point);
    }
    for (std::int64_t j = begin; j < begin + count; ++j) {
      const float* u_row = u.data() + j * k;
      for (std::int64_t r = 0; r < rows; ++r) {
        const float x = work[r * k + j];
        const int code = quantize_value(x, params[r], max_q);
        codes[r * bs + (j - begin)] = code;
        error[r] = (x - static_cast<float>(code - params[r].zero_point) * params[r].scale) / u_row[j];
      }
      for (std::int64_t r = 0; r < rows; ++r) {
        float* row = work.data() + r * k;
        const float e = error[r];
        for (std::int64_t t = j + 1; t < k; ++t) row[t] -= e * u_row[t];
      }
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      store_block(q, r0 + r, b, params[r], std::span<const int>(codes).subspan(static_cast<std::size_t>(r * bs), bs));
    }
  }
}

}  // namespace

QuantizedMatrix quantize_gptq(std::span<const float> w, std::int64_t n, std::int64_t k,
                              std::span<const double> hessian, const QuantOptions& options) {
  if (n <= 0 || k <= 0 || static_cast<std::int64_t>(w.size()) != n * k) {
    throw_error(ErrorKind::usage, "", "quantize_gptq", std::to_string(n * k) + " weights",
                std::to_string(w.size()));
  }
  if (static_cast<std::int64_t>(hessian.size()) != k * k) {
    throw_error(ErrorKind::usage, "", "quantize_gptq", "input statistics [" + std::to_string(k) + ", " +
                std::to_string(k) + "]", std::to_string(hessian.size()) + " values");
  }
  QuantOptions o = options;
  if (o.method == QuantMethod::gptq) o.method = QuantMethod::mse;  // how each block's scale is chosen
  QuantizedMatrix q = empty_quantized_matrix(n, k, o);
  const auto threads = static_cast<unsigned>(std::max(0, options.threads));
  const std::vector<float> u = upper_inverse_factor(hessian, k, threads);
  const std::int64_t tiles = (n + kRowTile - 1) / kRowTile;
  parallel_rows(static_cast<int>(tiles), threads, [&](int t0, int t1) {
    for (std::int64_t t = t0; t < t1; ++t) {
      quantize_row_tile(w, t * kRowTile, std::min(n, (t + 1) * kRowTile), k, u, o, q);
    }
  }, 4);
  return q;
}

}  // namespace q3vl::builder
