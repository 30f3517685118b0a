// A conversation -> the prompt the decoder sees, exactly as HF's Qwen3VLProcessor builds it:
//   chat template (add_generation_prompt) -> each "<|image_pad|>" replaced by
//   t*h*w/merge^2 pads, each "<|video_pad|>" by video_placeholder_text (per temporal group
//   "<t seconds><|vision_start|>" + pads + "<|vision_end|>") -> tokenizer ids ->
//   get_rope_index positions.
// Also records, per token, which medium's which feature row it is (or none), and a
// signature that tells a cached prefix apart from a new one with the same ids (pad ids
// of different images are equal; their signatures are not).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model_parts.h"
#include "runtime/vision_features.h"
#include "vision/rope_index.h"

namespace q3vl::runtime {

struct VisualRow {
  const VisionFeatures* features = nullptr;  // nullptr: a text token
  std::int64_t row = 0;                      // token row within features
};

struct Prompt {
  std::string text;                 // expanded prompt text
  std::vector<std::int64_t> ids;    // [T]
  vision::MropePositions positions; // [3, T] + rope_delta
  std::vector<VisualRow> visual;    // [T]
  std::vector<std::uint64_t> signature;  // [T]
  std::int64_t image_tokens = 0;
  std::int64_t video_tokens = 0;
};

// `images` / `videos` come from VisionCache::collect for the same conversation and
// must outlive the Prompt (VisualRow points into them). Throws q3vl::Error(format) if
// the rendered template holds a different number of pads than the conversation has media.
Prompt build_prompt(const ModelParts& parts, const std::vector<text::Message>& conversation,
                    const GenerateOptions& options, const std::vector<PromptMedium>& images,
                    const std::vector<PromptMedium>& videos);

}  // namespace q3vl::runtime
