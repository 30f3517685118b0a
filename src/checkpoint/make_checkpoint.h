// make_checkpoint: writes a deterministic random-weight Qwen3-VL checkpoint in
// the Hugging Face layout (what `q3vl make-checkpoint` runs):
//
//   config.json, generation_config.json, preprocessor_config.json,
//   video_preprocessor_config.json, chat_template.jinja, tokenizer.json,
//   tokenizer_config.json, and bf16 weights as model.safetensors, or, above
//   max_shard_bytes, model-0000k-of-0000n.safetensors + model.safetensors.index.json.
//
// The model is a preset (presets.h) or any valid qwen3_vl config.json (either
// layout, read and validated by load_model_config); config.json is then written
// back canonically (to_config_json), so only the fields q3vl models are kept.
//
// Same options => byte-identical files on any machine (see random_weights.h),
// whatever `threads` is. Everything is written into a hidden sibling directory
// (`.NAME.partial-PID`) that is renamed to `out` at the end; on failure or
// cancellation it is removed (as are parent directories this call created), so
// `out` is either complete or absent.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "checkpoint/weight_layout.h"
#include "q3vl/config.h"
#include "q3vl/progress.h"

namespace q3vl::checkpoint {

// transformers 4.57's save_pretrained default ("5GB", decimal), which produced
// the Hub's Qwen3-VL shards; 5.x raised its default to 50GB, which would never
// shard even the 4B model.
inline constexpr std::uint64_t kDefaultMaxShardBytes = 5'000'000'000ull;

struct MakeCheckpointOptions {
  // Exactly one of `preset` and `config_file` is set.
  std::string preset;                  // one of preset_names()
  std::filesystem::path config_file;   // a qwen3_vl config.json (or its directory)
  std::uint64_t seed = 0;
  std::filesystem::path out;           // must not exist, or be an empty directory
  std::filesystem::path tokenizer_dir; // empty: default_tokenizer_dir()
  // Layout of the written config.json. Unset: the layout config_file was read
  // from, or rope_scaling (the Hub's) for a preset.
  std::optional<ConfigLayout> layout;
  std::uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  // MoE checkpoints: how the fused expert tensors are stored (weight_layout.h); both
  // layouts hold the same model. Ignored for dense models.
  ExpertLayout expert_layout = ExpertLayout::hub;
  // Overrides text_config.num_hidden_layers (a slice of a big model for benchmarks);
  // the result is validated like any config (DeepStack taps, mlp_only_layers must fit).
  std::optional<std::int64_t> text_layers;
  unsigned threads = 0;                // 0: std::thread::hardware_concurrency()
  ProgressMode progress = ProgressMode::automatic;
  // Polled between files and between weight blocks (at most 32 MB apart); once
  // true, make_checkpoint removes its staging directory and throws. A lock-free
  // atomic, so a SIGINT/SIGTERM handler may set it. Not owned; must outlive the call.
  const std::atomic<bool>* cancel = nullptr;
};

struct MakeCheckpointResult {
  std::size_t tensor_count = 0;
  std::uint64_t weight_bytes = 0;  // sum of tensor sizes (bf16)
  double seconds = 0.0;            // wall time
};

// The validated model config `options` asks for (the preset's, or config_file's,
// with text_layers applied). Throws q3vl::Error: usage (neither or both of preset /
// config_file, unknown preset, text_layers not positive or too few for the config),
// io / format / config / unsupported (config_file unreadable or invalid, naming the field).
ModelConfig requested_config(const MakeCheckpointOptions& options);

// Throws q3vl::Error: what requested_config throws; usage (`out` exists and is
// not an empty directory); io (unwritable path, missing tokenizer files, disk
// full); runtime with detail "interrupted" once *cancel is true (nothing is left
// behind).
MakeCheckpointResult make_checkpoint(const MakeCheckpointOptions& options);

}  // namespace q3vl::checkpoint
