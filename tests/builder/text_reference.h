// A plain C++ (double precision) Qwen3-VL text decoder, written from the HF modeling
// code (modeling_qwen3_vl.py: Qwen3VLTextDecoderLayer, Qwen3VLTextAttention,
// Qwen3VLTextRotaryEmbedding + apply_interleaved_mrope, Qwen3VLTextRMSNorm), used as an
// independent reference for the decoder graph. Slow and simple on purpose: no caches,
// one batch row, full causal attention over the given tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "q3vl/config.h"

namespace q3vl::testing {

// inputs_embeds: [T, D]; position_ids: [3, T]; deepstack: [K, T, D] (may be empty).
// Returns logits [T, vocab] for every position.
std::vector<double> reference_text_logits(const io::Checkpoint& checkpoint, const ModelConfig& config,
                                          const std::vector<float>& inputs_embeds,
                                          const std::vector<std::int64_t>& position_ids,
                                          const std::vector<float>& deepstack, std::int64_t tokens);

// A small random-weight checkpoint of the text model only (HF names), F32/BF16 mix, seeded.
// Writes config-independent safetensors under `dir` (no config.json).
void write_text_checkpoint(const std::filesystem::path& dir, const ModelConfig& config, unsigned seed);

// A config that is not a preset: odd widths, head_dim != hidden / heads, 2 DeepStack taps.
ModelConfig custom_text_config(bool tied);

}  // namespace q3vl::testing
