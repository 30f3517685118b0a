// The Qwen3-VL vision front end: images and videos to pixel_values, grid_thw and
// placeholder counts, identical to Hugging Face transformers 5.23's default
// processors (Qwen2VLImageProcessor with the torchvision backend, Qwen3VLVideoProcessor).
//
// Pipeline per image (per video frame): smart_resize to multiples of
// patch_size * merge_size within [min_pixels, max_pixels] -> bicubic antialiased resize
// on uint8 (torch's native uint8 kernel, bit-exact; see ResampleOrder) -> (u8 - 255*mean)
// / (255*std) in float32 (HF's fused rescale + normalize) -> patchify into rows of
// in_channels * temporal_patch_size * patch_size^2 values in merge-block order (spec 2.3).
// An image is one temporal group (its frame duplicated); a video has ceil(T/2) groups.
//
// Units: pixels for sizes, tokens for num_tokens (one token per merge_size^2 patches).
// Errors: q3vl::Error (config: invalid processor config; format: aspect ratio > 200,
// as HF's ValueError; usage: contradictory request options).
// Thread-safety: all functions are reentrant; configs and results are plain values.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "q3vl/image.h"
#include "q3vl/video.h"

namespace q3vl {

// The fields preprocessor_config.json and video_preprocessor_config.json share: the
// resize bounds, the patch geometry and the normalisation (what patchify needs). The
// defaults are Qwen3VLVideoProcessor's class defaults, which are also the values every
// Qwen3-VL checkpoint ships (patch 16, mean = std = 0.5).
struct VisionProcessorConfig {
  std::int64_t min_pixels = 128 * 32 * 32;  // size.shortest_edge (a pixel count)
  std::int64_t max_pixels = 768 * 32 * 32;  // size.longest_edge (a pixel count)
  std::int64_t patch_size = 16;
  std::int64_t temporal_patch_size = 2;
  std::int64_t merge_size = 2;
  std::array<double, 3> image_mean{0.5, 0.5, 0.5};
  std::array<double, 3> image_std{0.5, 0.5, 0.5};
  double rescale_factor = 1.0 / 255.0;
  bool do_resize = true;
  bool do_rescale = true;
  bool do_normalize = true;
  // Not a file field: the most pixels one resize may produce (all frames of a video
  // together). The resolved min_pixels and max_pixels (config or request) must not
  // exceed it, checked before anything is allocated (q3vl::Error(limit) naming it).
  // 2^25 is above every HF Qwen3-VL default (16777216 for images, 25165824 for
  // videos); pixel_values at the limit take ~800 MB.
  std::int64_t max_resized_pixels = std::int64_t{1} << 25;
};

// preprocessor_config.json. Defaults are HF's class defaults (Qwen2VLImageProcessor,
// i.e. Qwen2-VL's values); Qwen3-VL checkpoints override them (patch 16, mean = std =
// 0.5, 65536..16777216 px).
struct ImageProcessorConfig : VisionProcessorConfig {
  ImageProcessorConfig()
      : VisionProcessorConfig{.min_pixels = 56 * 56,
                              .max_pixels = 28 * 28 * 1280,
                              .patch_size = 14,
                              .image_mean = {0.48145466, 0.4578275, 0.40821073},
                              .image_std = {0.26862954, 0.26130258, 0.27577711}} {}
};

// video_preprocessor_config.json. Pixel bounds count all sampled frames (T * H * W).
struct VideoProcessorConfig : VisionProcessorConfig {
  bool do_sample_frames = true;
  double fps = 2.0;  // frames sampled per second of video
  std::int64_t min_frames = 4;
  std::int64_t max_frames = 768;
};

struct ProcessorConfig {
  ImageProcessorConfig image;
  VideoProcessorConfig video;
};

// Reads DIR/preprocessor_config.json + DIR/video_preprocessor_config.json (the Hub
// layout), or DIR/processor_config.json with "image_processor" / "video_processor"
// objects (what transformers 5.x save_pretrained writes). A missing video config
// keeps the class defaults. Top-level min_pixels / max_pixels override size, as HF's
// constructor does. Throws q3vl::Error(io) if no image config exists, (config) naming
// file and field for an invalid value.
ProcessorConfig load_processor_config(const std::filesystem::path& dir);

// How the resize is computed. Both are separable antialiased bicubic (a = -0.5,
// support scaled by the downscale factor, half-pixel centres), horizontal pass first,
// uint8 between the passes, on the same double-precision weights; they differ only in
// the fixed-point weights.
enum class ResampleOrder {
  torch,   // torch's uint8 kernel (HF's default processor): int16 weights whose
           // precision is chosen per pass from the largest weight
  pillow,  // Pillow's Image.resize(BICUBIC): 22-bit int32 weights (the slow processor)
};

// Per-request overrides (the processor call's `size`); unset = the config's value.
struct VisionRequest {
  std::optional<std::int64_t> min_pixels;
  std::optional<std::int64_t> max_pixels;
  // Maximum placeholder tokens: caps max_pixels at tokens * (patch_size * merge_size)^2
  // (and min_pixels at that cap). Not an HF option; HF's equivalent is size.longest_edge.
  std::optional<std::int64_t> max_tokens;
  ResampleOrder resample = ResampleOrder::torch;
};

// pixel_values and the grid of one image or one video.
struct VisionInput {
  std::vector<float> pixel_values;  // row-major [rows, cols]
  std::int64_t rows = 0;            // grid_t * grid_h * grid_w
  std::int64_t cols = 0;            // 3 * temporal_patch_size * patch_size^2
  std::array<std::int64_t, 3> grid_thw{};
  std::int64_t num_tokens = 0;      // rows / merge_size^2
  std::int64_t resized_height = 0;  // pixels
  std::int64_t resized_width = 0;   // pixels
  // Videos only: sampled frame indices (before odd-count padding), the fps used, and
  // one "<x.x seconds>" text per temporal group (HF's Qwen3VLProcessor).
  std::vector<std::int64_t> frame_indices;
  double fps = 0.0;
  std::vector<std::string> timestamps;
};

VisionInput preprocess_image(const Image& image, const ImageProcessorConfig& config,
                             const VisionRequest& request = {});

// Frame indices HF's Qwen3VLVideoProcessor.sample_frames picks: n = int(total / fps *
// config.fps) clamped to [min_frames, max_frames] and to total, then
// round-half-even(linspace(0, total - 1, n)). fps <= 0 means unknown: 24 is assumed.
std::vector<std::int64_t> sample_frame_indices(const VideoMetadata& metadata,
                                               const VideoProcessorConfig& config);

// One "<x.x seconds>" per temporal group: indices padded with the last to a multiple
// of temporal_patch_size, seconds = index / fps, each group's first and last averaged.
std::vector<std::string> video_timestamps(const std::vector<std::int64_t>& indices, double fps,
                                          std::int64_t temporal_patch_size);

// Already-sampled frames (all the same size) of one video. `indices` and `fps` only
// feed frame_indices / timestamps of the result (fps <= 0: 24).
VisionInput preprocess_video_frames(const std::vector<Image>& frames,
                                    const std::vector<std::int64_t>& indices, double fps,
                                    const VideoProcessorConfig& config,
                                    const VisionRequest& request = {});

// The text that replaces a video's "<|video_pad|>" in the prompt (Qwen3VLProcessor.
// replace_video_token): per temporal group, "<x.x seconds><|vision_start|>" + h*w/merge^2
// "<|video_pad|>" + "<|vision_end|>". The chat template's own vision_start/end around
// the original pad stay, so each group's span nests inside them.
std::string video_placeholder_text(const VisionInput& video, std::int64_t merge_size);

// Decodes, samples (when config.do_sample_frames) and preprocesses a video file.
VisionInput preprocess_video_file(const std::filesystem::path& path, const VideoProcessorConfig& config,
                                  const VisionRequest& request = {}, const ImageLimits& limits = {});

// A list of image files as the frames of one video, with no timing metadata: as HF,
// fps is assumed to be 24 and frames are sampled from the list.
VisionInput preprocess_image_sequence(const std::vector<std::filesystem::path>& frames,
                                      const VideoProcessorConfig& config,
                                      const VisionRequest& request = {}, const DecodeOptions& decode = {});

}  // namespace q3vl
