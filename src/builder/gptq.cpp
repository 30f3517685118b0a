#include "builder/gptq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "builder/blas.h"
#include "core/parallel.h"
#include "q3vl/error.h"

namespace q3vl::builder {
namespace {

constexpr double kDampening = 0.01;  // of the mean diagonal, as in the paper
// Columns walked before their errors reach the rest of the row in one matrix product
// (the paper's lazy batch updates); a multiple of every block size up to 128.
constexpr std::int64_t kBatchColumns = 128;

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

// U [k, k] upper, with H^-1 = U^T U. If J H J = L L^T then H^-1 = (J L^-1 J)^T (J L^-1 J)
// and J L^-1 J is upper triangular with a positive diagonal: the factor we want, from one
// Cholesky and one triangular inverse (LAPACK, column-major: our row-major symmetric R
// reads the same, and column-major (p, q) sits at row-major index q * k + p).
std::vector<float> upper_inverse_factor(std::span<const double> h, std::int64_t k) {
  for (const double v : h) {
    if (!std::isfinite(v)) {
      throw_error(ErrorKind::usage, "", "gptq", "finite input statistics", "a NaN or infinite value");
    }
  }
  std::vector<double> a = reversed_dampened(h, k);
  const int n = static_cast<int>(k);
  const char lower = 'L', non_unit = 'N';
  int info = 0;
  dpotrf_(&lower, &n, a.data(), &n, &info);
  if (info == 0) dtrtri_(&lower, &non_unit, &n, a.data(), &n, &info);
  if (info != 0) {
    throw_error(ErrorKind::usage, "", "gptq", "finite, symmetric input statistics (a positive definite H)",
                "a matrix without a Cholesky factor (LAPACK info " + std::to_string(info) + ")");
  }
  std::vector<float> u(static_cast<std::size_t>(k * k), 0.0f);
  for (std::int64_t i = 0; i < k; ++i) {
    for (std::int64_t j = i; j < k; ++j) {
      // U[i][j] = (L^-1)[k-1-i][k-1-j], stored column-major at (k-1-j) * k + (k-1-i)
      u[i * k + j] = static_cast<float>(a[(k - 1 - j) * k + (k - 1 - i)]);
    }
  }
  return u;
}

// The GPTQ column walk over columns [c0, c1) of rows [r0, r1) of `work` [n, k]: each column
// is quantized (block parameters chosen as its block starts) and its scaled error goes to
// `error` [n, c1 - c0] and, within the batch, to the columns after it. The rest of the
// row gets the batch's errors afterwards in one product (quantize_gptq).
void walk_batch(std::vector<float>& work, std::vector<float>& error, std::int64_t r0, std::int64_t r1,
                std::int64_t c0, std::int64_t c1, std::int64_t k, const std::vector<float>& u,
                const QuantOptions& o, QuantizedMatrix& q) {
  const std::int64_t bs = o.block_size, width = c1 - c0;
  std::vector<float> block(static_cast<std::size_t>(bs));
  std::vector<int> codes(static_cast<std::size_t>(bs));
  for (std::int64_t r = r0; r < r1; ++r) {
    float* row = work.data() + r * k;
    for (std::int64_t begin = c0; begin < c1; begin += bs) {
      const std::int64_t count = std::min(bs, k - begin);
      std::fill(block.begin(), block.end(), 0.0f);
      std::copy_n(row + begin, count, block.begin());
      const BlockParams p = choose_block_params(block, o);
      std::fill(codes.begin(), codes.end(), quantize_value(0.0f, p, o));  // the zero padding of a partial block
      for (std::int64_t j = begin; j < begin + count; ++j) {
        const float* u_row = u.data() + j * k;
        const int code = quantize_value(row[j], p, o);
        codes[static_cast<std::size_t>(j - begin)] = code;
        const float e = (row[j] - dequantize_value(code, p, o)) / u_row[j];
        error[static_cast<std::size_t>(r * width + (j - c0))] = e;
        for (std::int64_t t = j + 1; t < c1; ++t) row[t] -= e * u_row[t];
      }
      store_block(q, r, begin / bs, p, codes);
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
  const std::vector<float> u = upper_inverse_factor(hessian, k);
  std::vector<float> work(w.begin(), w.end());
  const std::int64_t batch = std::max(kBatchColumns, o.block_size);
  std::vector<float> error(static_cast<std::size_t>(n * batch));
  for (std::int64_t c0 = 0; c0 < k; c0 += batch) {
    const std::int64_t c1 = std::min(k, c0 + batch);
    parallel_rows(static_cast<int>(n), threads, [&](int r0, int r1) {
      walk_batch(work, error, r0, r1, c0, c1, k, u, o, q);
    }, 16);
    if (c1 < k) {  // work[:, c1:] -= error [n, c1 - c0] x U[c0:c1, c1:]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(k - c1),
                  static_cast<int>(c1 - c0), -1.0f, error.data(), static_cast<int>(c1 - c0), u.data() + c0 * k + c1,
                  static_cast<int>(k), 1.0f, work.data() + c1, static_cast<int>(k));
    }
  }
  return q;
}

}  // namespace q3vl::builder
