// Builds a decoder graph from a checkpoint into a scratch directory and runs it with
// host vectors (one batch row unless stated), for the decoder tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "builder/text_decoder.h"
#include "ort_test_util.h"
#include "q3vl/config.h"

namespace q3vl::testing {

struct DecoderStep {
  HostF32 logits;
  std::vector<HostF32> present;  // key0, value0, key1, value1, ...
  // With DecoderGraphOptions::expose_router_logits: each MoE layer's router logits
  // [B * T, num_experts], in layer order.
  std::vector<HostF32> router_logits;
};

class DecoderRunner {
 public:
  // Writes decoder.onnx (+ data) for `checkpoint_dir` into `out_dir` and opens a session.
  DecoderRunner(const std::filesystem::path& checkpoint_dir, const std::filesystem::path& out_dir,
                const ModelConfig& config, const builder::DecoderGraphOptions& options);
  // Opens the decoder.onnx of a package `q3vl build` wrote.
  DecoderRunner(const std::filesystem::path& package_dir, const ModelConfig& config);

  // embeds: [B, T, D]; positions: [3, B, T]; deepstack: [K, B, T, D] (zeros if empty; packed
  // into the columns of inputs_embeds for DeepstackInput::packed, dropped for none);
  // past: per layer key/value [B, kv, P, hd] (empty = P = 0). Mask = ones [B, P + T].
  DecoderStep run(std::int64_t batch, std::int64_t tokens, std::vector<float> embeds,
                  std::vector<std::int64_t> positions, std::vector<float> deepstack,
                  std::vector<HostF32> past);

  const ModelConfig& config() const { return config_; }

 private:
  ModelConfig config_;
  builder::DeepstackInput deepstack_ = builder::DeepstackInput::separate;
  std::vector<std::string> router_outputs_;  // exposed router logits, in layer order
  std::unique_ptr<runtime::OrtSession> session_;
};

// Deterministic pseudo-random floats in [-scale, scale].
std::vector<float> random_floats(std::size_t n, unsigned seed, float scale);

}  // namespace q3vl::testing
