// Test support for the vision graph: random vision-tower checkpoints for any config,
// and running a vision.onnx session on S equal-size segments with the host tables.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "q3vl/config.h"
#include "runtime/ort_session.h"

namespace q3vl::testing {

// Writes DIR/model.safetensors with every model.visual.* tensor HF's Qwen3VLVisionModel
// has for `vision`, float32, values from a seeded generator (same seed, same bytes).
// Scales as docs/reference/hf-reference-facts.md suggests for random weights that behave:
// matrices ~ N(0, (2/sqrt(fan_in))^2), biases ~ N(0, 0.1^2), norm weights ~ 1 + N(0, 0.1^2),
// pos_embed ~ N(0, 0.4^2).
void write_random_vision_checkpoint(const std::filesystem::path& dir, const VisionConfig& vision,
                                    std::uint64_t seed);

// Deterministic values in [-1, 1) (pixel-like inputs).
std::vector<float> random_uniform(std::size_t count, std::uint64_t seed);

struct VisionRun {
  std::vector<float> merged;      // [S, L/m^2, D]
  std::vector<float> deepstack;   // [K, S, L/m^2, D]
  std::vector<std::int64_t> merged_shape;
  std::vector<std::int64_t> deepstack_shape;
};

// One vision-graph call: `pixels` [S * h * w, P] (S segments of h x w patches, each in
// merge-block order); the grid tables come from vision/grid_tables.
VisionRun run_vision_graph(runtime::OrtSession& session, const VisionConfig& vision,
                           std::span<const float> pixels, std::int64_t segments, std::int64_t h,
                           std::int64_t w);

}  // namespace q3vl::testing
