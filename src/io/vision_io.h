// vision.onnx's input and output names: the one definition that the builder (which
// writes them; src/builder/vision_graph.h has the shapes and dtypes) and the runtime
// (which binds them, src/runtime/vision_features.cpp) share.
//
// Header-only; thread-safe.
#pragma once

namespace q3vl::io {

// Inputs: one call holds S equal-size segments of L patches each.
inline constexpr const char* kVisionPixelValues = "pixel_values";           // f32 [S, L, P]
inline constexpr const char* kVisionPosEmbedIndices = "pos_embed_indices";  // i64 [L, 4]
inline constexpr const char* kVisionPosEmbedWeights = "pos_embed_weights";  // f32 [L, 4]
inline constexpr const char* kVisionRotaryCos = "rotary_cos";               // f32 [L, head_dim]
inline constexpr const char* kVisionRotarySin = "rotary_sin";               // f32 [L, head_dim]
// Outputs.
inline constexpr const char* kVisionMergedTokens = "merged_tokens";            // f32 [S, L/m^2, D]
inline constexpr const char* kVisionDeepstackFeatures = "deepstack_features";  // f32 [K, S, L/m^2, D]

}  // namespace q3vl::io
