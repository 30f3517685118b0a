// preprocess_video_* (processor.h): one smart_resize for all frames (bounds over
// T * H * W), the same uint8 resize per frame, odd counts padded with the last frame,
// then patchify with a real temporal axis.
#include "q3vl/error.h"
#include "q3vl/processor.h"
#include "vision/parallel.h"
#include "vision/patchify.h"
#include "vision/request_bounds.h"
#include "vision/resample.h"
#include "vision/smart_resize.h"

namespace q3vl {

VisionInput preprocess_video_frames(const std::vector<Image>& frames, const std::vector<std::int64_t>& indices,
                                    double fps, const VideoProcessorConfig& config, const VisionRequest& request) {
  if (frames.empty()) throw_error(ErrorKind::format, "video", "frames", "at least one frame", "none");
  const int width = frames[0].width, height = frames[0].height;
  for (const Image& f : frames) {
    if (f.width != width || f.height != height) {
      throw_error(ErrorKind::shape, "video", "frame size", std::to_string(width) + "x" + std::to_string(height),
                  std::to_string(f.width) + "x" + std::to_string(f.height));
    }
  }
  const std::int64_t factor = config.patch_size * config.merge_size;
  const auto bounds = vision::request_bounds(config.min_pixels, config.max_pixels, factor, request);

  std::vector<Image> resized_storage;
  std::vector<const Image*> resized;
  std::int64_t out_h = height, out_w = width;
  if (config.do_resize) {
    const auto size = vision::smart_resize_video(static_cast<std::int64_t>(frames.size()), height, width,
                                                 config.temporal_patch_size, factor, bounds.min_pixels,
                                                 bounds.max_pixels);
    out_h = size.height, out_w = size.width;
  }
  if (out_h != height || out_w != width) {
    resized_storage.resize(frames.size());
    // Frames are independent: resize them in parallel, each single-threaded.
    vision::parallel_rows(static_cast<int>(frames.size()), 0, [&](int f0, int f1) {
      for (int f = f0; f < f1; ++f) {
        resized_storage[f] = vision::resize_bicubic(frames[f], out_w, out_h, request.resample, 1);
      }
    }, 1);
    for (const Image& f : resized_storage) resized.push_back(&f);
  } else {
    for (const Image& f : frames) resized.push_back(&f);
  }
  while (static_cast<std::int64_t>(resized.size()) % config.temporal_patch_size != 0) resized.push_back(resized.back());

  vision::PatchifyParams params{config.patch_size, config.temporal_patch_size, config.merge_size,
                                config.image_mean,  config.image_std,           config.rescale_factor,
                                config.do_rescale,  config.do_normalize};
  VisionInput out;
  out.pixel_values = vision::patchify(resized, params);
  const std::int64_t grid_t = static_cast<std::int64_t>(resized.size()) / config.temporal_patch_size;
  out.grid_thw = {grid_t, out_h / config.patch_size, out_w / config.patch_size};
  out.rows = grid_t * out.grid_thw[1] * out.grid_thw[2];
  out.cols = 3 * config.temporal_patch_size * config.patch_size * config.patch_size;
  out.num_tokens = out.rows / (config.merge_size * config.merge_size);
  out.resized_height = out_h;
  out.resized_width = out_w;
  out.frame_indices = indices;
  out.fps = fps > 0 ? fps : 24.0;
  out.timestamps = video_timestamps(indices, out.fps, config.temporal_patch_size);
  return out;
}

VisionInput preprocess_video_file(const std::filesystem::path& path, const VideoProcessorConfig& config,
                                  const VisionRequest& request, const ImageLimits& limits) {
  const VideoMetadata metadata = probe_video(path);
  std::vector<std::int64_t> indices;
  if (config.do_sample_frames) {
    indices = sample_frame_indices(metadata, config);
  } else {
    for (std::int64_t i = 0; i < metadata.total_num_frames; ++i) indices.push_back(i);
  }
  if (indices.empty()) throw_error(ErrorKind::format, path.string(), "the video has no frames");
  const std::vector<Image> frames = decode_video_frames(path, indices, limits);
  return preprocess_video_frames(frames, indices, metadata.fps, config, request);
}

VisionInput preprocess_image_sequence(const std::vector<std::filesystem::path>& files,
                                      const VideoProcessorConfig& config, const VisionRequest& request,
                                      const DecodeOptions& decode) {
  VideoMetadata metadata;
  metadata.total_num_frames = static_cast<std::int64_t>(files.size());
  std::vector<std::int64_t> indices;
  if (config.do_sample_frames) {
    indices = sample_frame_indices(metadata, config);
  } else {
    for (std::int64_t i = 0; i < metadata.total_num_frames; ++i) indices.push_back(i);
  }
  if (indices.empty()) throw_error(ErrorKind::format, "image sequence", "frames", "at least one file", "none");
  std::vector<Image> frames;
  for (std::int64_t i : indices) frames.push_back(decode_image_file(files[static_cast<std::size_t>(i)], decode));
  return preprocess_video_frames(frames, indices, metadata.fps, config, request);
}

}  // namespace q3vl
