// Which media a request may reference, enforced before anything is queued:
//   - local paths and file:// URLs only inside ServerOptions::allowed_media_paths, after
//     resolving symlinks; a path with a `..` component is refused outright;
//   - data: URLs (base64) are decoded here into bytes (images) or a private temporary
//     file (videos: FFmpeg reads files), bounded like any body by --max-body-bytes;
//   - http(s) URLs only with allow_remote_media, fetched here (image only) with a size
//     cap and a timeout;
//   - at most max_images_per_request images + videos;
//   - every image's width x height and every video's frame size at most max_pixels:
//     limit() puts the bound in the request's GenerateOptions::media_limits, so the
//     runtime checks it from the header before decoding any pixel, and each medium is
//     decoded once, by the runtime (or not at all on a vision-cache hit); error_of()
//     turns the runtime's error into a 413 naming the request field.
// After apply(), every image is Kind::bytes and every video a canonical allowed path or
// a file apply() wrote, so the runtime reads nothing the policy did not check.
// Thread-safety: immutable after construction; apply() may run concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "q3vl/error.h"
#include "q3vl/generate.h"
#include "q3vl/messages.h"
#include "server/api_error.h"

namespace q3vl::server {

struct MediaLimits {
  std::vector<std::filesystem::path> allowed_dirs;  // canonical
  bool allow_remote = false;
  std::int64_t max_remote_bytes = 0;
  int remote_timeout_ms = 0;
  int max_media = 0;
  std::int64_t max_pixels = 0;
};

// The files apply() wrote for one request (videos sent as data: URLs), each created by
// mkstemp (mode 0600) in the temporary directory and removed when this is destroyed:
// keep it until Scheduler::submit() has returned (submit decodes the media).
class MediaFiles {
 public:
  MediaFiles() = default;
  MediaFiles(MediaFiles&&) = default;
  MediaFiles& operator=(MediaFiles&&) = delete;
  MediaFiles(const MediaFiles&) = delete;
  ~MediaFiles();
  // Writes `bytes` to a new file; throws ApiError(500) if it cannot.
  std::filesystem::path write(const std::vector<std::uint8_t>& bytes);

 private:
  std::vector<std::filesystem::path> paths_;
};

class MediaPolicy {
 public:
  // Resolves the allowed directories. Throws q3vl::Error(usage) for one that does not
  // exist or is not a directory.
  explicit MediaPolicy(MediaLimits limits);

  // Checks and rewrites the media of `messages` in place. Throws ApiError: 400 naming
  // the field (path outside the allowed dirs, `..`, missing file, bad base64, remote
  // media disabled, video neither a path nor a data: URL) or 413 (too many media,
  // remote file too large); 500 if a video's temporary file cannot be written.
  MediaFiles apply(std::vector<text::Message>& messages) const;

  // Sets the decode limits (max_pixels) the runtime applies to every image and frame.
  void limit(GenerateOptions& options) const;

  // The ApiError for `error`, thrown by the runtime on `messages` (as apply() left
  // them): a medium's error names its request field (413 over a limit, else 400);
  // any other error as from_error().
  ApiError error_of(const Error& error, const std::vector<text::Message>& messages) const;

  const MediaLimits& limits() const { return limits_; }

 private:
  std::filesystem::path allowed_path(const std::string& location, const std::string& field) const;
  std::vector<std::uint8_t> fetch(const std::string& url, const std::string& field) const;
  MediaLimits limits_;
};

}  // namespace q3vl::server
