// A plain C++ re-implementation of HF Qwen3VLVisionModel (transformers 5.23) for
// testing the vision graph: naive loops, double accumulation, no ONNX, and its own
// grid math (raster-order bilinear position embedding and 2-D rotary computed here,
// not taken from vision/grid_tables), so it checks the graph and the tables together.
//
// Only for small configs: it holds every vision weight as float32 and attention is
// O(L^2) per head. Not thread-safe to construct; run() is const.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "q3vl/config.h"

namespace q3vl::testing {

struct VisionReferenceOutput {
  std::vector<float> merged;                  // [L / m^2, out_hidden_size]
  std::vector<std::vector<float>> deepstack;  // K x [L / m^2, out_hidden_size]
};

class VisionReference {
 public:
  // Reads model.visual.* from the checkpoint (throws q3vl::Error if one is missing).
  VisionReference(const io::Checkpoint& checkpoint, VisionConfig config);

  // One attention segment: `pixels` [h * w, P] in merge-block row order.
  VisionReferenceOutput run(std::span<const float> pixels, std::int64_t h, std::int64_t w) const;

 private:
  const std::vector<float>& weight(const std::string& name) const;

  VisionConfig config_;
  std::map<std::string, std::vector<float>> weights_;
};

}  // namespace q3vl::testing
