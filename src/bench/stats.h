// Summary of repeated timings for the measuring tools.
#pragma once

#include <vector>

#include "q3vl/bench.h"

namespace q3vl::bench {

// Mean and sample standard deviation (divisor n - 1; 0 for fewer than two samples).
BenchStat summarize(std::vector<double> samples);

}  // namespace q3vl::bench
