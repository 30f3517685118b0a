#include "bench/stats.h"

#include <cmath>

namespace q3vl::bench {

BenchStat summarize(std::vector<double> samples) {
  BenchStat s;
  const auto n = static_cast<double>(samples.size());
  if (samples.empty()) return s;
  double sum = 0.0;
  for (double v : samples) sum += v;
  s.mean = sum / n;
  if (samples.size() > 1) {
    double squares = 0.0;
    for (double v : samples) squares += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(squares / (n - 1.0));
  }
  s.samples = std::move(samples);
  return s;
}

}  // namespace q3vl::bench
