// preprocess_video_* (processor.h): one smart_resize for all frames (bounds over
// T * H * W, T = the sampled count), the same uint8 resize per frame, odd counts padded
// with the last frame, then patchify with a real temporal axis. Frames are resized as
// they arrive, so only resized frames are kept.
#include "q3vl/error.h"
#include "q3vl/processor.h"
#include "vision/patchify.h"
#include "vision/request_bounds.h"
#include "vision/resample.h"
#include "vision/smart_resize.h"

namespace q3vl {
namespace {

// Resizes frames of one video to the size smart_resize_video picks for `num_frames`
// frames of the first frame's size; every frame must have that size.
class FrameResizer {
 public:
  FrameResizer(std::size_t num_frames, const VideoProcessorConfig& config, const VisionRequest& request)
      : config_(config), request_(request), frames_(num_frames) {}

  void add(std::size_t position, Image frame) {
    if (width_ == 0) set_size(frame.width, frame.height);
    if (frame.width != width_ || frame.height != height_) {
      throw_error(ErrorKind::shape, "video", "frame " + std::to_string(position) + " size",
                  std::to_string(width_) + "x" + std::to_string(height_),
                  std::to_string(frame.width) + "x" + std::to_string(frame.height));
    }
    if (out_w_ != width_ || out_h_ != height_) frame = vision::resize_bicubic(frame, out_w_, out_h_, request_.resample);
    frames_.at(position) = std::move(frame);
  }

  VisionInput finish(const std::vector<std::int64_t>& indices, double fps) {
    std::vector<const Image*> group_frames;
    for (const Image& f : frames_) {
      if (f.width == 0) throw_error(ErrorKind::format, "video", "frames", "every sampled frame", "a missing frame");
      group_frames.push_back(&f);
    }
    while (static_cast<std::int64_t>(group_frames.size()) % config_.temporal_patch_size != 0) {
      group_frames.push_back(group_frames.back());
    }
    VisionInput out = vision::patchify_input(group_frames, config_);
    out.frame_indices = indices;
    out.fps = fps > 0 ? fps : 24.0;  // HF's default when the fps is unknown
    out.timestamps = video_timestamps(indices, out.fps, config_.temporal_patch_size);
    return out;
  }

 private:
  void set_size(int width, int height) {
    width_ = width, height_ = height;
    out_w_ = width, out_h_ = height;
    if (!config_.do_resize) return;
    const std::int64_t factor = config_.patch_size * config_.merge_size;
    const auto bounds = vision::request_bounds(config_.min_pixels, config_.max_pixels, factor, request_, config_.max_resized_pixels);
    const auto size = vision::smart_resize_video(static_cast<std::int64_t>(frames_.size()), height, width,
                                                 config_.temporal_patch_size, factor, bounds.min_pixels,
                                                 bounds.max_pixels);
    out_w_ = size.width, out_h_ = size.height;
  }

  const VideoProcessorConfig& config_;  // outlives the resizer (a local of the caller)
  const VisionRequest& request_;        // same
  std::vector<Image> frames_;
  std::int64_t width_ = 0, height_ = 0, out_w_ = 0, out_h_ = 0;
};

std::vector<std::int64_t> frames_to_use(const VideoMetadata& metadata, const VideoProcessorConfig& config) {
  if (config.do_sample_frames) return sample_frame_indices(metadata, config);
  std::vector<std::int64_t> all;
  for (std::int64_t i = 0; i < metadata.total_num_frames; ++i) all.push_back(i);
  return all;
}

}  // namespace

VisionInput preprocess_video_frames(const std::vector<Image>& frames, const std::vector<std::int64_t>& indices,
                                    double fps, const VideoProcessorConfig& config, const VisionRequest& request) {
  if (frames.empty()) throw_error(ErrorKind::format, "video", "frames", "at least one frame", "none");
  FrameResizer resizer(frames.size(), config, request);
  for (std::size_t i = 0; i < frames.size(); ++i) resizer.add(i, frames[i]);
  return resizer.finish(indices, fps);
}

VisionInput preprocess_video_file(const std::filesystem::path& path, const VideoProcessorConfig& config,
                                  const VisionRequest& request, const ImageLimits& limits) {
  const VideoMetadata metadata = probe_video(path);
  const std::vector<std::int64_t> indices = frames_to_use(metadata, config);
  if (indices.empty()) throw_error(ErrorKind::format, path.string(), "the video has no frames");
  FrameResizer resizer(indices.size(), config, request);
  decode_video_frames(path, indices, limits, [&](std::size_t position, Image frame) {
    resizer.add(position, std::move(frame));
  });
  return resizer.finish(indices, metadata.fps);
}

VisionInput preprocess_image_sequence(const std::vector<std::filesystem::path>& files,
                                      const VideoProcessorConfig& config, const VisionRequest& request,
                                      const DecodeOptions& decode) {
  VideoMetadata metadata;
  metadata.total_num_frames = static_cast<std::int64_t>(files.size());
  const std::vector<std::int64_t> indices = frames_to_use(metadata, config);
  if (indices.empty()) throw_error(ErrorKind::format, "image sequence", "frames", "at least one file", "none");
  FrameResizer resizer(indices.size(), config, request);
  for (std::size_t i = 0; i < indices.size(); ++i) {
    resizer.add(i, decode_image_file(files[static_cast<std::size_t>(indices[i])], decode));
  }
  return resizer.finish(indices, metadata.fps);
}

}  // namespace q3vl
