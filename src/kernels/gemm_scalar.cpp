// The portable path: quant_linear.h's formula as plain loops over the packed layout.
// Also the reading of the layout that the vector paths must agree with.
#include <algorithm>

#include "kernels/activation_quant.h"
#include "kernels/dispatch.h"
#include "kernels/pack.h"
#include "kernels/weight_grid.h"
#include "io/dtype.h"

namespace q3vl::kernels {
namespace {

// The unsigned byte u the math multiplies (quant_linear.h): the code, or for nl its grid
// value + 128.
int weight_byte(const std::uint8_t* blob, const QuantLinearShape& s, std::int64_t r, std::int64_t k) {
  const int code = tile_code(blob, s.bits, r, k);
  return s.grid == WeightGrid::nl ? kNl4Grid[static_cast<std::size_t>(code)] + 128 : code;
}

void tile_rows(const PackedWeightsView& w, const QuantizedActivations& a, std::int64_t tile, std::int64_t m_begin,
               std::int64_t m_end, const TileOutput& out) {
  const QuantLinearShape& s = w.shape;
  const std::int64_t k_blocks = s.k_blocks(), subs = s.block_size / kActBlock, act_blocks = a.blocks_per_row();
  const std::int64_t rows = std::min(kTileRows, s.n - tile * kTileRows);
  for (std::int64_t m = m_begin; m < m_end; ++m) {
    const std::int8_t* act = a.values.data() + m * a.k_padded;
    const float* d = a.scales.data() + m * act_blocks;
    const std::int32_t* sums = a.sums.data() + m * act_blocks;
    float lanes[kTileRows] = {};
    for (std::int64_t r = 0; r < rows; ++r) {
      float acc = 0.0f;
      for (std::int64_t b = 0; b < k_blocks; ++b) {
        const std::int64_t tb = tile * k_blocks + b;
        const std::uint8_t* blob = w.weight + tb * s.tile_block_bytes();
        const float scale = io::f16_to_f32(w.scales[tb * kTileRows + r]);
        // nl: 128, the offset weight_byte added (the symmetric zero point of 8 bits).
        const std::int32_t zero = w.zero_points                   ? w.zero_points[tb * kTileRows + r]
                                  : s.grid == WeightGrid::nl ? 128
                                                             : 1 << (s.bits - 1);
        float block = 0.0f;
        for (std::int64_t sub = 0; sub < subs; ++sub) {
          const std::int64_t j = b * subs + sub;
          std::int32_t dot = 0;
          for (std::int64_t kk = 0; kk < kActBlock; ++kk) {
            const std::int64_t k = sub * kActBlock + kk;
            dot += weight_byte(blob, s, r, k) * act[b * s.block_size + k];
          }
          block += d[j] * static_cast<float>(dot - zero * sums[j]);
        }
        acc += scale * block;
      }
      lanes[r] = acc;
    }
    store_tile(out, lanes, tile, m);
  }
}

}  // namespace

const IsaKernels kScalarKernels{quantize_activation_rows, tile_rows};

}  // namespace q3vl::kernels
