// make_checkpoint: writes a deterministic random-weight Qwen3-VL checkpoint in
// the Hugging Face layout (what `q3vl make-checkpoint` runs):
//
//   config.json, generation_config.json, preprocessor_config.json,
//   video_preprocessor_config.json, chat_template.jinja, tokenizer.json,
//   tokenizer_config.json, and bf16 weights as model.safetensors, or, above
//   max_shard_bytes, model-0000k-of-0000n.safetensors + model.safetensors.index.json.
//
// Same options => byte-identical files on any machine (see random_weights.h),
// whatever `threads` is. Everything is written into a hidden sibling directory
// that is renamed to `out` at the end; on failure it is removed (as are parent
// directories this call created), so `out` is either complete or absent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "q3vl/config.h"
#include "q3vl/progress.h"

namespace q3vl::checkpoint {

// transformers 4.57's save_pretrained default ("5GB", decimal), which produced
// the Hub's Qwen3-VL shards; 5.x raised its default to 50GB, which would never
// shard even the 4B model.
inline constexpr std::uint64_t kDefaultMaxShardBytes = 5'000'000'000ull;

struct MakeCheckpointOptions {
  std::string preset;                  // one of preset_names()
  std::uint64_t seed = 0;
  std::filesystem::path out;           // must not exist, or be an empty directory
  std::filesystem::path tokenizer_dir; // empty: default_tokenizer_dir()
  ConfigLayout layout = ConfigLayout::rope_scaling;
  std::uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  unsigned threads = 0;                // 0: std::thread::hardware_concurrency()
  ProgressMode progress = ProgressMode::automatic;
};

struct MakeCheckpointResult {
  std::size_t tensor_count = 0;
  std::uint64_t weight_bytes = 0;  // sum of tensor sizes (bf16)
  double seconds = 0.0;            // wall time
};

// Throws q3vl::Error: usage (unknown preset, `out` exists and is not an empty
// directory), io (unwritable path, missing tokenizer files, disk full).
MakeCheckpointResult make_checkpoint(const MakeCheckpointOptions& options);

}  // namespace q3vl::checkpoint
