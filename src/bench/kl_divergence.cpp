#include "bench/kl_divergence.h"

#include <algorithm>
#include <cmath>

#include "q3vl/error.h"

namespace q3vl::bench {
namespace {

std::size_t argmax(std::span<const float> x) {
  return static_cast<std::size_t>(std::max_element(x.begin(), x.end()) - x.begin());
}

// log(sum_j exp(x_j)) in double, shifted by the max for range.
double log_sum_exp(std::span<const float> x, double max) {
  double sum = 0.0;
  for (const float v : x) sum += std::exp(static_cast<double>(v) - max);
  return max + std::log(sum);
}

}  // namespace

PositionKl compare_logits(std::span<const float> reference, std::span<const float> test) {
  if (reference.size() != test.size() || reference.empty()) {
    throw_error(ErrorKind::shape, "", "logits", "two equal, non-empty vocabularies",
                std::to_string(reference.size()) + " and " + std::to_string(test.size()));
  }
  const std::size_t top_p = argmax(reference);
  const std::size_t top_q = argmax(test);
  const double lse_p = log_sum_exp(reference, reference[top_p]);
  const double lse_q = log_sum_exp(test, test[top_q]);
  double kl = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double log_p = static_cast<double>(reference[i]) - lse_p;
    const double log_q = static_cast<double>(test[i]) - lse_q;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  // Rounding can leave a tiny negative sum when P = Q; KL is non-negative.
  return {std::max(kl, 0.0), top_p == top_q};
}

KlStats summarize_kl(const std::vector<PositionKl>& positions) {
  KlStats s;
  s.tokens = static_cast<std::int64_t>(positions.size());
  if (positions.empty()) return s;
  const auto n = static_cast<double>(positions.size());
  std::vector<double> kls;
  double same = 0.0;
  for (const PositionKl& p : positions) {
    kls.push_back(p.kl);
    same += p.same_top1 ? 1.0 : 0.0;
  }
  double sum = 0.0;
  for (double v : kls) sum += v;
  s.mean_kl = sum / n;
  if (positions.size() > 1) {
    double squares = 0.0;
    for (double v : kls) squares += (v - s.mean_kl) * (v - s.mean_kl);
    s.kl_stderr = std::sqrt(squares / (n - 1.0) / n);
  }
  std::sort(kls.begin(), kls.end());
  s.max_kl = kls.back();
  const auto rank = static_cast<std::size_t>(std::ceil(0.99 * n));
  s.p99_kl = kls[std::max<std::size_t>(rank, 1) - 1];
  s.top1_agreement = same / n;
  return s;
}

}  // namespace q3vl::bench
