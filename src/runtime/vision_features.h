// Media -> vision features, with a per-chat cache keyed by content.
//
// A medium (image or video part of a message) is identified by a SHA-256 over its kind,
// its encoded bytes and the preprocessing request (min/max pixels): the same bytes sent
// again with the same limits hit the cache and are neither decoded nor encoded again.
// Missing media are preprocessed (q3vl/processor.h) and run through vision.onnx, one
// call per group of equal-size segments (vision/grid_tables.h): same-size images share
// a call, and a video's temporal groups are segments of one call.
//
// Not thread-safe; one VisionCache per Chat.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "q3vl/generate.h"
#include "q3vl/messages.h"
#include "runtime/model_parts.h"
#include "vision/rope_index.h"

namespace q3vl::runtime {

struct VisionFeatures {
  bool is_video = false;
  vision::GridTHW grid;
  std::vector<std::string> timestamps;  // videos: one "<x.x seconds>" per temporal group
  std::int64_t num_tokens = 0;          // t * h * w / merge^2
  std::vector<float> merged;            // [num_tokens, D]
  std::vector<float> deepstack;         // [K, num_tokens, D]
};

// One medium of a prompt, in message order within its kind.
struct PromptMedium {
  std::string key;  // content hash (hex)
  std::shared_ptr<const VisionFeatures> features;
};

struct VisionRunStats {
  std::int64_t vision_calls = 0;
  std::int64_t cache_hits = 0;
  double ms = 0.0;
};

class VisionCache {
 public:
  explicit VisionCache(const ModelParts& parts) : parts_(parts) {}

  // Features for every image part and every video part of `conversation`, each list in
  // message order. Media: local paths, in-memory bytes, base64 data: URLs (images).
  // Throws q3vl::Error: io / format (unreadable media, naming it),
  // unsupported (http(s) URLs, no vision graph in the package), limit (decoder limits).
  void collect(const std::vector<text::Message>& conversation, const GenerateOptions& options,
               std::vector<PromptMedium>& images, std::vector<PromptMedium>& videos,
               VisionRunStats& stats);

  void clear() { entries_.clear(); }

 private:
  void encode(std::vector<std::shared_ptr<VisionFeatures>>& items,
              std::vector<VisionInput>& inputs, VisionRunStats& stats);

  const ModelParts& parts_;  // owned by the Model, which the Chat keeps alive
  std::map<std::string, std::shared_ptr<const VisionFeatures>> entries_;
};

}  // namespace q3vl::runtime
