// The vision graph of an ONNX Runtime GenAI package (builder/genai_package.h): the same
// encoder as vision.onnx (write_vision_tower), with GenAI's IO contract. GenAI hands the
// graph what its processor produced and nothing else, so everything that depends on the
// grid (pos-embed taps and weights, the 2-D rotary table; vision/grid_tables.h computes the
// same on the host for q3vl packages) is computed inside the graph from image_grid_thw:
//
//   inputs  pixel_values    f32 [num_patches, P]   one image: t * h * w rows in merge-block order
//           image_grid_thw  i64 [1, 3]              (t, h, w) of that image
//   outputs image_features  f32 [num_tokens, D * (1 + K)]   num_tokens = t * h * w / m^2
//                           = [merger | deepstack tap 0 | ... | tap K-1] per token
//                           (D * 1 without DeepStack)
//
// image_grid_thw's first dim is static 1: GenAI then runs the graph once per image (its
// QwenVisionState slices pixel_values and the feature buffer per image), so images of
// different sizes need no padding and no cross-image attention mask.
// The t temporal groups of the grid are separate attention segments, as in vision.onnx.
#pragma once

#include "builder/graph.h"
#include "builder/vision_graph.h"
#include "io/safetensors.h"
#include "q3vl/config.h"

namespace q3vl::builder {

inline constexpr const char* kGenaiPixelValues = "pixel_values";
inline constexpr const char* kGenaiImageGridThw = "image_grid_thw";
inline constexpr const char* kGenaiImageFeatures = "image_features";

// Adds the whole graph to `g`. deepstack = false leaves the taps out (image_features is
// D wide). Throws as write_vision_graph does.
void write_genai_vision_graph(Graph& g, const io::Checkpoint& checkpoint, const ModelConfig& config,
                              const VisionGraphOptions& options, bool deepstack);

}  // namespace q3vl::builder
