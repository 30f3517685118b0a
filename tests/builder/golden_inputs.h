// Decoder inputs from a committed HF golden case (tests/goldens/model): HF's
// inputs_embeds (visual tokens already scattered), MRoPE position ids, and the dense
// DeepStack input built from HF's per-visual-token DeepStack features.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/golden.h"

namespace q3vl::testing {

struct GoldenDecoderInputs {
  std::int64_t tokens = 0;
  std::vector<float> embeds;           // [T, D]
  std::vector<std::int64_t> positions; // [3, T]
  std::vector<float> deepstack;        // [K, T, D], zero at non-visual positions
  std::int64_t rope_delta = 0;
};

// The dense DeepStack input [K, T, D] of a golden case: HF's image_deepstack / video_deepstack
// rows at the image_token_id / video_token_id positions of input_ids, zero elsewhere.
std::vector<float> golden_deepstack_input(const GoldenCase& c, const std::string& preset, std::int64_t taps,
                                          std::int64_t hidden, std::int64_t image_token_id,
                                          std::int64_t video_token_id);

// image_token_id / video_token_id say where HF's image_deepstack / video_deepstack rows go.
GoldenDecoderInputs load_golden_decoder_inputs(const GoldenCase& c, const std::string& preset,
                                               std::int64_t taps, std::int64_t image_token_id,
                                               std::int64_t video_token_id);

}  // namespace q3vl::testing
