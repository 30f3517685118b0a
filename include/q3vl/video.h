// Video decoding with FFmpeg (libavformat / libavcodec / libswscale).
//
// Metadata and frames as the reference reads them (transformers 5.23
// video_utils.read_video_pyav: PyAV, `stream.frames`, `stream.average_rate`,
// `frame.to_ndarray(format="rgb24")`):
//   - total_num_frames is the container's frame count (AVStream.nb_frames); when the
//     container does not record it, the frames are counted by demuxing (the reference
//     would see 0 and fail).
//   - fps is the stream's average frame rate (AVStream.avg_frame_rate).
//   - frames are numbered in decode-output order from 0; YUV is converted to RGB by
//     libswscale with SWS_BILINEAR and the frame's own matrix and range (unspecified
//     matrix = BT.601, unspecified range = limited), the conversion PyAV performs.
//     Its fast YUV->RGB path may differ from the reference's FFmpeg build by one level.
// Errors: q3vl::Error(io) when the file cannot be opened, (format) when it has no
// decodable video stream or a requested frame is missing, (limit) when a frame is
// above ImageLimits. Thread-safety: reentrant; results are plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "q3vl/image.h"

namespace q3vl {

struct VideoMetadata {
  std::int64_t total_num_frames = 0;
  double fps = 0.0;  // 0 when unknown (the processor then assumes 24, as HF does)
  int width = 0;     // pixels
  int height = 0;    // pixels
};

// Reads the container header (no frame is decoded unless the frame count is missing).
VideoMetadata probe_video(const std::filesystem::path& path);

// Decodes the frames at the given indices (ascending, repeats allowed) as RGB, in the
// order given. Stops decoding after the last requested frame.
std::vector<Image> decode_video_frames(const std::filesystem::path& path,
                                       const std::vector<std::int64_t>& indices,
                                       const ImageLimits& limits = {});

// Streaming form: calls on_frame(position in `indices`, frame) for each requested frame
// as soon as it is decoded, so a caller that shrinks frames holds one full-size frame
// at a time (a long 4K clip would otherwise need gigabytes). Exceptions from on_frame
// propagate.
void decode_video_frames(const std::filesystem::path& path, const std::vector<std::int64_t>& indices,
                         const ImageLimits& limits, const std::function<void(std::size_t, Image)>& on_frame);

}  // namespace q3vl
