// DecoderRunner: one call of embed.onnx and decoder.onnx over a span of new tokens, with
// the KV cache bound in place (IO binding; contract at the top of
// src/builder/text_decoder.h and src/builder/embed_graph.h).
//
//   embed(ids)                     -> inputs_embeds [T, D] into a caller buffer
//   run(kv, batch)                 -> B sequences of T new tokens each, appended in place
//                                     to the bound KV buffers; each row's last logits [B, V]
//   run(embeds, deepstack, pos)    -> the same for one sequence on the runner's own cache
//
// Batched calls (B > 1) are decode steps (T = 1): GroupQueryAttention takes one valid
// length per row from the attention mask (seqlens_k = sum(mask row) - 1), so rows of
// different lengths share one call with a right-padded mask, each writing its new K/V at
// its own length (shared/ort.md: a multi-token step with a past needs B = 1).
// The logits are a preallocated [B, 1, V] buffer. Not thread-safe; one per Chat or
// Scheduler. The ModelParts (sessions) outlive the runner: its owner holds the Model.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "runtime/kv_cache.h"
#include "runtime/model_parts.h"

namespace q3vl::runtime {

// One decoder call: `batch` sequences of T = positions.size() / (3 * batch) new tokens each.
struct DecoderBatch {
  std::int64_t batch = 1;
  std::span<const float> embeds;            // [B, T, D]
  std::span<const float> deepstack;         // [K, B, T, D]; empty = zeros (text, decode)
  std::span<const std::int64_t> positions;  // [3, B, T]
  std::span<const std::int64_t> past;       // [B]: valid rows of each sequence before the call
};

class DecoderRunner {
 public:
  explicit DecoderRunner(const ModelParts& parts);

  std::int64_t hidden_size() const { return hidden_; }
  std::int64_t deepstack_layers() const { return deepstack_; }
  KvCache& cache() { return cache_; }

  // inputs_embeds of `ids` ([T, D] row-major) into `out` (resized). Throws
  // q3vl::Error(limit) for an id outside [0, vocab_size).
  void embed(std::span<const std::int64_t> ids, std::vector<float>& out);

  // Runs `batch` against `kv`: row b's T new tokens go to rows [past[b], past[b] + T) of
  // sequence b. Requires past[b] + T <= kv.capacity, and T = 1 when batch > 1. Returns
  // the logits of each row's last position, [B, V] (valid until the next run). Throws
  // q3vl::Error(runtime) naming the decoder graph when ONNX Runtime fails.
  std::span<const float> run(const KvBinding& kv, const DecoderBatch& batch);

  // Runs T = positions.size() / 3 new tokens after the cache's valid rows. `embeds` is
  // [T, D]; `deepstack` is [K, T, D] or empty (all zero, e.g. a decode step); `positions`
  // is [3, T]. Requires cache().length() + T <= cache().capacity(). Advances the cache
  // length by T and returns the logits of the last position (valid until the next run).
  std::span<const float> run(std::span<const float> embeds, std::span<const float> deepstack,
                             std::span<const std::int64_t> positions);

  // Every position's logits of the last run, [B, T, V], for a package built with
  // --all-logits (manifest logits_mode "all"; eval-kl scores a chunk in one call with
  // them); empty for the usual last-position packages. Valid until the next run.
  std::span<const float> all_logits() const { return all_logits_; }

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
  std::vector<std::int64_t> mask_;      // [B, width] attention mask of the last call
  std::vector<float> zero_deepstack_;   // [K, B, T, D] zeros, grown as needed
  std::vector<float> logits_;           // [B, V]
  std::vector<float> all_logits_;       // [B, T, V]; logits_mode "all" only
  std::vector<std::string> past_names_, present_names_;
  std::vector<std::string> observed_names_;
  OutputObserver observer_;
};

}  // namespace q3vl::runtime
