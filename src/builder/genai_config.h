// The two JSON files an ONNX Runtime GenAI package needs besides graphs and tokenizer:
// genai_config.json (model type, token ids, the three graphs and their IO names, search
// defaults) and processor_config.json (onnxruntime-extensions' image pipeline, which
// GenAI's qwen3_vl processor runs). Checked against onnxruntime-genai 0.18.0, whose
// config parser rejects unknown keys, so only keys it knows are written.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "io/json_file.h"
#include "q3vl/config.h"
#include "q3vl/package.h"
#include "q3vl/processor.h"

namespace q3vl::builder {

inline constexpr const char* kGenaiConfigFileName = "genai_config.json";
inline constexpr const char* kGenaiProcessorFileName = "processor_config.json";
// search.max_length when the caller gives none: GenAI allocates the shared KV buffer at
// max_length, so the model's whole context (256K for Qwen3-VL) would cost tens of GB.
inline constexpr std::int64_t kGenaiDefaultMaxLength = 4096;

struct GenaiConfigOptions {
  std::string vision_file = "vision.onnx";
  std::string embedding_file = "embed.onnx";
  std::string decoder_file = "decoder.onnx";
  bool deepstack = true;  // decoder.hidden_size = hidden_size * (1 + K) (builder/genai_embed_graph.h)
  std::int64_t max_length = kGenaiDefaultMaxLength;  // capped at the context length
  std::int64_t bos_token_id = -1;                    // -1 = not written
};

// genai_config.json for `config`. Throws q3vl::Error(config) naming the field when the
// checkpoint cannot be expressed (no eos token, vision out_hidden_size != text hidden_size).
io::Json genai_config_json(const ModelConfig& config, const TokenIds& tokens, const GenaiConfigOptions& options);

// processor_config.json: decode -> RGB -> smart resize (bicubic, the checkpoint's
// min/max pixels, factor patch_size * merge_size) -> rescale -> normalize (the
// checkpoint's mean/std) -> patchify in HF's merge-block order.
io::Json genai_processor_json(const ModelConfig& config, const ImageProcessorConfig& image);

}  // namespace q3vl::builder
