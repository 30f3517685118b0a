// Media -> vision features, with a cache keyed by content (one per Chat, or one shared by
// every request of a Scheduler).
//
// A medium (image or video part of a message) is identified by a SHA-256 over its kind,
// its encoded bytes and the preprocessing request (min/max pixels): the same bytes sent
// again with the same limits hit the cache and are neither decoded nor encoded again.
// Missing media are preprocessed (q3vl/processor.h) and run through vision.onnx, one
// call per group of equal-size segments (vision/grid_tables.h): same-size images share
// a call, and a video's temporal groups are segments of one call.
//
// The cache is a bounded LRU (or unbounded); collect() may run on several threads at once
// (lookups and inserts are locked, decoding and encoding are not: two threads missing the
// same medium at once both encode it).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
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
  static constexpr std::size_t kUnbounded = static_cast<std::size_t>(-1);
  // Keeps at most `capacity` media (least recently used dropped first; 0 keeps none).
  explicit VisionCache(const ModelParts& parts, std::size_t capacity = kUnbounded)
      : parts_(parts), capacity_(capacity) {}

  // Features for every image part and every video part of `conversation`, each list in
  // message order. Media: local paths, in-memory bytes, base64 data: URLs (images).
  // Throws q3vl::Error: io / format (unreadable media, naming it),
  // unsupported (http(s) URLs, no vision graph in the package), limit (decoder limits).
  void collect(const std::vector<text::Message>& conversation, const GenerateOptions& options,
               std::vector<PromptMedium>& images, std::vector<PromptMedium>& videos,
               VisionRunStats& stats);

  void clear();

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const VisionFeatures>>;
  void encode(std::vector<std::shared_ptr<VisionFeatures>>& items,
              std::vector<VisionInput>& inputs, VisionRunStats& stats);
  std::shared_ptr<const VisionFeatures> find(const std::string& key);  // and mark it used
  void insert(const std::string& key, std::shared_ptr<const VisionFeatures> features);

  const ModelParts& parts_;  // owned by the Model, which the cache's owner keeps alive
  const std::size_t capacity_;
  std::mutex mutex_;                                   // guards lru_ and index_
  std::list<Entry> lru_;                               // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace q3vl::runtime
