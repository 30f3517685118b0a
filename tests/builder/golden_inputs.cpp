#include "golden_inputs.h"

#include <algorithm>

#include "q3vl/error.h"

namespace q3vl::testing {

std::vector<float> golden_deepstack_input(const GoldenCase& c, const std::string& preset, std::int64_t taps,
                                          std::int64_t hidden, std::int64_t image_token_id,
                                          std::int64_t video_token_id) {
  const GoldenI64 ids = c.input_i64("input_ids");
  const std::int64_t tokens = ids.numel();
  std::vector<float> deepstack(static_cast<std::size_t>(taps * tokens * hidden), 0.0f);
  // HF _deepstack_process: feature rows go to visual positions in sequence order, image
  // rows to image pads and video rows to video pads.
  for (const auto& [token, tensor] : {std::pair{image_token_id, std::string("image_deepstack")},
                                      std::pair{video_token_id, std::string("video_deepstack")}}) {
    if (!c.has_model(preset, tensor)) continue;
    const GoldenF32 features = c.model_f32(preset, tensor);  // [K, N, D]
    std::int64_t row = 0;
    for (std::int64_t s = 0; s < tokens; ++s) {
      if (ids.values[s] != token) continue;
      for (std::int64_t k = 0; k < taps; ++k) {
        std::copy_n(features.values.begin() + (k * features.dim(1) + row) * hidden, hidden,
                    deepstack.begin() + (k * tokens + s) * hidden);
      }
      ++row;
    }
    if (row != features.dim(1)) {
      throw_error(ErrorKind::shape, c.name(), tensor, std::to_string(features.dim(1)) + " visual positions",
                  std::to_string(row));
    }
  }
  return deepstack;
}

GoldenDecoderInputs load_golden_decoder_inputs(const GoldenCase& c, const std::string& preset,
                                               std::int64_t taps, std::int64_t image_token_id,
                                               std::int64_t video_token_id) {
  GoldenDecoderInputs in;
  const GoldenF32 embeds = c.model_f32(preset, "inputs_embeds");
  in.tokens = embeds.dim(1);
  in.embeds = embeds.values;
  in.positions = c.model_i64(preset, "position_ids").values;
  in.rope_delta = c.model_i64(preset, "rope_deltas").values.at(0);
  in.deepstack = golden_deepstack_input(c, preset, taps, embeds.dim(2), image_token_id, video_token_id);
  return in;
}

}  // namespace q3vl::testing
