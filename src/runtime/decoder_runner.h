// DecoderRunner: one call of embed.onnx and decoder.onnx over a span of new tokens, with
// the KV cache bound in place (IO binding; contract at the top of
// src/builder/text_decoder.h and src/builder/embed_graph.h).
//
//   embed(ids)                     -> inputs_embeds [T, D] into a caller buffer
//   run(embeds, deepstack, pos, T) -> appends T rows to the cache, returns the last
//                                     position's logits [V]
//
// The attention mask is a view of a ones buffer, the logits a preallocated [1, 1, V]
// buffer: a decode step allocates no tensor data. Not thread-safe; one per Chat. The
// ModelParts (sessions) outlive the runner: the Chat holds the Model's shared_ptr.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "runtime/kv_cache.h"
#include "runtime/model_parts.h"

namespace q3vl::runtime {

class DecoderRunner {
 public:
  explicit DecoderRunner(const ModelParts& parts);

  std::int64_t hidden_size() const { return hidden_; }
  std::int64_t deepstack_layers() const { return deepstack_; }
  KvCache& cache() { return cache_; }

  // inputs_embeds of `ids` ([T, D] row-major) into `out` (resized). Throws
  // q3vl::Error(limit) for an id outside [0, vocab_size).
  void embed(std::span<const std::int64_t> ids, std::vector<float>& out);

  // Runs T = positions.size() / 3 new tokens after the cache's valid rows. `embeds` is
  // [T, D]; `deepstack` is [K, T, D] or empty (all zero, e.g. a decode step); `positions`
  // is [3, T]. Requires cache().length() + T <= cache().capacity(). Advances the cache
  // length by T and returns the logits of the last position (valid until the next run).
  std::span<const float> run(std::span<const float> embeds, std::span<const float> deepstack,
                             std::span<const std::int64_t> positions);

  // Extra float outputs of the decoder graph (a calibration graph's "linear_input.*"),
  // handed to `observer` after every run() as [T, width] rows (batch 1): the builder's
  // GPTQ calibration records what each matmul saw. Empty `names` stops observing.
  using OutputObserver =
      std::function<void(const std::string& name, std::span<const float> rows, std::int64_t width)>;
  void observe_outputs(std::vector<std::string> names, OutputObserver observer);

 private:
  const ModelParts& parts_;  // owned by the Model, which the Chat keeps alive
  std::int64_t hidden_, deepstack_, vocab_, layers_;
  bool last_logits_only_;
  KvCache cache_;
  Ort::MemoryInfo cpu_;
  std::vector<std::int64_t> ones_;      // attention mask source, grown to the capacity
  std::vector<float> zero_deepstack_;   // [K, T, D] zeros, grown as needed
  std::vector<float> logits_;           // [V]
  std::vector<std::string> past_names_, present_names_;
  std::vector<std::string> observed_names_;
  OutputObserver observer_;
};

}  // namespace q3vl::runtime
