#include "golden_inputs.h"

#include "q3vl/error.h"

namespace q3vl::testing {

GoldenDecoderInputs load_golden_decoder_inputs(const GoldenCase& c, const std::string& preset,
                                               std::int64_t taps, std::int64_t image_token_id,
                                               std::int64_t video_token_id) {
  GoldenDecoderInputs in;
  const GoldenF32 embeds = c.model_f32(preset, "inputs_embeds");
  const GoldenI64 positions = c.model_i64(preset, "position_ids");
  const GoldenI64 ids = c.input_i64("input_ids");
  in.tokens = embeds.dim(1);
  const std::int64_t D = embeds.dim(2);
  in.embeds = embeds.values;
  in.positions = positions.values;
  in.rope_delta = c.model_i64(preset, "rope_deltas").values.at(0);
  in.deepstack.assign(static_cast<std::size_t>(taps * in.tokens * D), 0.0f);
  // HF _deepstack_process: feature rows go to visual positions in sequence order, image
  // rows to image pads and video rows to video pads.
  for (const auto& [token, tensor] : {std::pair{image_token_id, std::string("image_deepstack")},
                                      std::pair{video_token_id, std::string("video_deepstack")}}) {
    if (!c.has_model(preset, tensor)) continue;
    const GoldenF32 features = c.model_f32(preset, tensor);  // [K, N, D]
    std::int64_t row = 0;
    for (std::int64_t s = 0; s < in.tokens; ++s) {
      if (ids.values[s] != token) continue;
      for (std::int64_t k = 0; k < taps; ++k) {
        for (std::int64_t d = 0; d < D; ++d) {
          in.deepstack[(k * in.tokens + s) * D + d] = features.values[(k * features.dim(1) + row) * D + d];
        }
      }
      ++row;
    }
    if (row != features.dim(1)) {
      throw_error(ErrorKind::shape, c.name(), tensor, std::to_string(features.dim(1)) + " visual positions",
                  std::to_string(row));
    }
  }
  return in;
}

}  // namespace q3vl::testing
