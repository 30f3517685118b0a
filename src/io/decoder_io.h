// decoder.onnx's input and output names: the one definition that the builder (which
// writes them, src/builder/text_decoder.h has the shapes) and the runtime (which binds
// them) share. Names follow ONNX Runtime GenAI's where one exists, so packages stay
// familiar to its users.
//
// Header-only; pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace q3vl::io {

inline constexpr const char* kDecoderInputsEmbeds = "inputs_embeds";
inline constexpr const char* kDecoderPositionIds = "position_ids";
inline constexpr const char* kDecoderAttentionMask = "attention_mask";
inline constexpr const char* kDecoderDeepstackEmbeds = "deepstack_embeds";  // only when K > 0
inline constexpr const char* kDecoderLogits = "logits";

// Per-layer cache names for layer `layer` (0-based): "past_key_values.3.key",
// "past_key_values.3.value" (inputs), "present.3.key", "present.3.value" (outputs).
inline std::string past_key_name(std::int64_t layer) {
  return "past_key_values." + std::to_string(layer) + ".key";
}
inline std::string past_value_name(std::int64_t layer) {
  return "past_key_values." + std::to_string(layer) + ".value";
}
inline std::string present_key_name(std::int64_t layer) { return "present." + std::to_string(layer) + ".key"; }
inline std::string present_value_name(std::int64_t layer) {
  return "present." + std::to_string(layer) + ".value";
}

}  // namespace q3vl::io
