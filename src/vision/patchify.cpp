#include "vision/patchify.h"

#include <cstring>
#include <string>

#include "q3vl/error.h"
#include "core/parallel.h"

namespace q3vl::vision {

std::array<std::array<float, 256>, 3> normalization_table(const VisionProcessorConfig& config) {
  std::array<std::array<float, 256>, 3> table{};
  const float inverse_rescale = static_cast<float>(1.0 / config.rescale_factor);
  for (int c = 0; c < 3; ++c) {
    const float mean = config.do_rescale ? static_cast<float>(config.image_mean[c]) * inverse_rescale
                                         : static_cast<float>(config.image_mean[c]);
    const float std = config.do_rescale ? static_cast<float>(config.image_std[c]) * inverse_rescale
                                        : static_cast<float>(config.image_std[c]);
    for (int u = 0; u < 256; ++u) {
      const float x = static_cast<float>(u);
      if (config.do_normalize) {
        table[c][u] = (x - mean) / std;
      } else if (config.do_rescale) {
        table[c][u] = x * static_cast<float>(config.rescale_factor);
      } else {
        table[c][u] = x;
      }
    }
  }
  return table;
}

std::vector<float> patchify(const std::vector<const Image*>& frames, const VisionProcessorConfig& config, unsigned threads) {
  const std::int64_t p = config.patch_size, tps = config.temporal_patch_size, m = config.merge_size;
  if (frames.empty() || static_cast<std::int64_t>(frames.size()) % tps != 0) {
    throw_error(ErrorKind::shape, "patchify", "frames", "a positive multiple of temporal_patch_size",
                std::to_string(frames.size()));
  }
  const int width = frames[0]->width, height = frames[0]->height;
  for (const Image* f : frames) {
    if (f->width != width || f->height != height || f->width % (p * m) != 0 || f->height % (p * m) != 0) {
      throw_error(ErrorKind::shape, "patchify", "frame size",
                  "equal sizes, multiples of " + std::to_string(p * m),
                  std::to_string(f->width) + "x" + std::to_string(f->height));
    }
  }
  const auto table = normalization_table(config);
  const std::int64_t gh = height / p, gw = width / p, groups = static_cast<std::int64_t>(frames.size()) / tps;
  const std::int64_t cols = 3 * tps * p * p;
  const std::int64_t rows_per_group = gh * gw;
  std::vector<float> out(static_cast<std::size_t>(groups * rows_per_group * cols));

  // One unit of work = one merge-block row (m patch rows of one temporal group).
  const int block_rows = static_cast<int>(groups * (gh / m));
  parallel_rows(block_rows, threads, [&](int b0, int b1) {
    for (int b = b0; b < b1; ++b) {
      const std::int64_t g = b / (gh / m), bh = b % (gh / m);
      for (std::int64_t bw = 0; bw < gw / m; ++bw) {
        for (std::int64_t ih = 0; ih < m; ++ih) {
          for (std::int64_t iw = 0; iw < m; ++iw) {
            const std::int64_t r = g * rows_per_group + ((bh * (gw / m) + bw) * m + ih) * m + iw;
            const std::int64_t py = bh * m + ih, px = bw * m + iw;
            float* row = out.data() + r * cols;
            for (int c = 0; c < 3; ++c) {
              const float* lut = table[c].data();
              for (std::int64_t tp = 0; tp < tps; ++tp) {
                const Image* frame_ptr = frames[static_cast<std::size_t>(g * tps + tp)];
                float* d = row + (c * tps + tp) * p * p;
                if (tp > 0 && frame_ptr == frames[static_cast<std::size_t>(g * tps)]) {
                  // An image's duplicated frame: copy the block just written.
                  std::memcpy(d, row + c * tps * p * p, static_cast<std::size_t>(p * p) * sizeof(float));
                  continue;
                }
                const Image& frame = *frame_ptr;
                for (std::int64_t dy = 0; dy < p; ++dy, d += p) {
                  const std::uint8_t* s =
                      frame.rgb.data() + ((py * p + dy) * width + px * p) * 3 + c;
                  for (std::int64_t dx = 0; dx < p; ++dx) d[dx] = lut[s[3 * dx]];
                }
              }
            }
          }
        }
      }
    }
  }, 4);
  return out;
}

VisionInput patchify_input(const std::vector<const Image*>& frames, const VisionProcessorConfig& config) {
  VisionInput out;
  out.pixel_values = patchify(frames, config);  // checks the frames first
  const std::int64_t p = config.patch_size, tps = config.temporal_patch_size, m = config.merge_size;
  out.resized_height = frames[0]->height;
  out.resized_width = frames[0]->width;
  out.grid_thw = {static_cast<std::int64_t>(frames.size()) / tps, out.resized_height / p, out.resized_width / p};
  out.rows = out.grid_thw[0] * out.grid_thw[1] * out.grid_thw[2];
  out.cols = 3 * tps * p * p;
  out.num_tokens = out.rows / (m * m);
  return out;
}

}  // namespace q3vl::vision
