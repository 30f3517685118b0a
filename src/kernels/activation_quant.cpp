#include "kernels/activation_quant.h"

#include <algorithm>
#include <cmath>

namespace q3vl::kernels {

void prepare_activations(std::int64_t m, std::int64_t k_padded, QuantizedActivations& out) {
  out.m = m;
  out.k_padded = k_padded;
  const auto blocks = static_cast<std::size_t>(m * (k_padded / kActBlock));
  out.values.resize(static_cast<std::size_t>(m * k_padded));
  out.scales.resize(blocks);
  out.sums.resize(blocks);
}

void quantize_activation_rows(const float* x, std::int64_t k, std::int64_t row_begin, std::int64_t row_end,
                              QuantizedActivations& out) {
  const std::int64_t blocks = out.blocks_per_row();
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const float* row = x + r * k;
    std::int8_t* codes = out.values.data() + r * out.k_padded;
    for (std::int64_t j = 0; j < blocks; ++j) {
      const std::int64_t begin = j * kActBlock;
      const std::int64_t end = std::min(k, begin + kActBlock);
      float amax = 0.0f;
      for (std::int64_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(row[i]));
      const float d = amax / 127.0f;
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      std::int32_t sum = 0;
      for (std::int64_t i = begin; i < begin + kActBlock; ++i) {
        // nearbyint in the default mode rounds ties to even; |x * inv| <= 127 by construction.
        const std::int32_t a = i < end ? static_cast<std::int32_t>(std::nearbyint(row[i] * inv)) : 0;
        codes[i] = static_cast<std::int8_t>(std::clamp(a, -127, 127));
        sum += codes[i];
      }
      out.scales[static_cast<std::size_t>(r * blocks + j)] = d;
      out.sums[static_cast<std::size_t>(r * blocks + j)] = sum;
    }
  }
}

}  // namespace q3vl::kernels
