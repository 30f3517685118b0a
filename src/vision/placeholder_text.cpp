// video_placeholder_text (processor.h), as transformers 5.23's
// Qwen3VLProcessor.replace_video_token builds it.
#include "q3vl/processor.h"

namespace q3vl {

std::string video_placeholder_text(const VisionInput& video, std::int64_t merge_size) {
  const std::int64_t per_group = video.grid_thw[1] * video.grid_thw[2] / (merge_size * merge_size);
  std::string text;
  for (std::int64_t g = 0; g < video.grid_thw[0]; ++g) {
    if (static_cast<std::size_t>(g) < video.timestamps.size()) text += video.timestamps[g];
    text += "<|vision_start|>";
    for (std::int64_t i = 0; i < per_group; ++i) text += "<|video_pad|>";
    text += "<|vision_end|>";
  }
  return text;
}

}  // namespace q3vl
