// Normalise + patchify frames into pixel_values rows, as HF's processors do.
//
// Normalisation is HF's fused rescale + normalise (image_processing_backends.py
// _fuse_mean_std_and_rescale_factor + torchvision normalize), in float32:
//   m = f32(mean) * f32(1 / rescale_factor),  s = f32(std) * f32(1 / rescale_factor)
//   v = f32(f32(u8) - m) / s                  (0.5/0.5 gives (u8 - 127.5) / 127.5)
// Only one of rescale / normalise: v = u8 * f32(rescale_factor) or (u8 - mean) / std.
// Every u8 value maps to one float, so a 256-entry table per channel gives the exact
// values at the cost of a lookup.
//
// Layout (spec 2.3): frames are grouped in temporal groups of temporal_patch_size;
// row r enumerates (group, bh, bw, ih, iw) with iw innermost, patch (py, px) =
// (merge*bh + ih, merge*bw + iw); column k enumerates (channel, tp, dy, dx) with dx
// innermost; value = frame[group * tps + tp][channel][patch*py + dy][patch*px + dx].
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "q3vl/image.h"
#include "q3vl/processor.h"

namespace q3vl::vision {

// patchify reads patch_size, temporal_patch_size, merge_size and the normalisation
// fields of the processor config it is given (image or video); the pixel bounds and
// do_resize are the caller's business. bench/vision still spells the type this way.
using PatchifyParams = VisionProcessorConfig;

// The float each u8 value of each channel becomes.
std::array<std::array<float, 256>, 3> normalization_table(const VisionProcessorConfig& config);

// frames: all the same size, width and height multiples of patch_size * merge_size;
// their count a multiple of temporal_patch_size (callers duplicate / pad first).
// Returns [rows = groups * (h/p) * (w/p), cols = 3 * tps * p * p] row-major.
// Throws q3vl::Error(shape) when a REQUIRES is violated.
std::vector<float> patchify(const std::vector<const Image*>& frames, const VisionProcessorConfig& config,
                            unsigned threads = 0);

// patchify's rows plus what describes them: grid_thw = {frames / tps, h / p, w / p},
// rows, cols, num_tokens and the frames' (already resized) size. Frames as for patchify;
// the video-only fields are left empty.
VisionInput patchify_input(const std::vector<const Image*>& frames, const VisionProcessorConfig& config);

}  // namespace q3vl::vision
