// Cosine similarity of two float vectors, accumulated in double: the accuracy measure the
// precision tests (quantized vs FP32 logits, INT8 vs FP32 vision outputs) share.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

namespace q3vl::testing {

inline double cosine(std::span<const float> a, std::span<const float> b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

}  // namespace q3vl::testing
