#include "checkpoint/hf_files.h"

namespace q3vl::checkpoint {
namespace {

// Fields both processors share: 16-pixel patches, 2-frame temporal patches,
// 2x2 merge, mean = std = 0.5 (Qwen2-VL's CLIP values are overridden).
io::Json shared_fields(std::int64_t min_pixels, std::int64_t max_pixels) {
  io::Json config = io::Json::object();
  config["do_convert_rgb"] = true;
  config["do_normalize"] = true;
  config["do_rescale"] = true;
  config["do_resize"] = true;
  config["image_mean"] = io::Json::array({0.5, 0.5, 0.5});
  config["image_std"] = io::Json::array({0.5, 0.5, 0.5});
  config["merge_size"] = 2;
  config["patch_size"] = 16;
  config["processor_class"] = "Qwen3VLProcessor";
  config["resample"] = 3;  // PIL BICUBIC
  config["rescale_factor"] = 1.0 / 255.0;
  // Pixel-count bounds, not edge lengths (docs/reference/qwen3vl.md §2).
  config["size"] = io::Json{{"longest_edge", max_pixels}, {"shortest_edge", min_pixels}};
  config["temporal_patch_size"] = 2;
  return config;
}

}  // namespace

io::Json qwen3vl_preprocessor_config() {
  io::Json config = shared_fields(65536, 16777216);  // 256*256 .. 4096*4096 pixels
  config["image_processor_type"] = "Qwen2VLImageProcessorFast";
  return config;
}

// The bounds count pixels over all sampled frames (t*h*w); frame sampling uses
// the class defaults fps 2, min_frames 4, max_frames 768.
io::Json qwen3vl_video_preprocessor_config() {
  io::Json config = shared_fields(4096, 25165824);  // 25165824 = 24576 * 32 * 32
  config["do_sample_frames"] = true;
  config["fps"] = 2;
  config["max_frames"] = 768;
  config["min_frames"] = 4;
  config["video_processor_type"] = "Qwen3VLVideoProcessor";
  return config;
}

}  // namespace q3vl::checkpoint
