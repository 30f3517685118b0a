// One position's comparison of two logit vectors, in double precision:
//   P = softmax(reference), Q = softmax(test)
//   KL(P || Q) = sum_i P_i (log P_i - log Q_i)    (nats; >= 0, 0 iff P = Q)
// with log-softmax computed as x_i - max - log(sum_j exp(x_j - max)).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "q3vl/quality.h"

namespace q3vl::bench {

struct PositionKl {
  double kl = 0.0;
  bool same_top1 = false;  // argmax ids equal (lowest id on ties)
};

// Requires equal, non-zero sizes (throws q3vl::Error(shape) otherwise).
PositionKl compare_logits(std::span<const float> reference, std::span<const float> test);

// Mean, standard error, max, 99th percentile (nearest rank) and top-1 agreement.
KlStats summarize_kl(const std::vector<PositionKl>& positions);

}  // namespace q3vl::bench
