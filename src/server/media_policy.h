// Which media a request may reference, enforced before anything is queued:
//   - local paths and file:// URLs only inside ServerOptions::allowed_media_paths, after
//     resolving symlinks; a path with a `..` component is refused outright;
//   - data: URLs (base64) are decoded here into bytes;
//   - http(s) URLs only with allow_remote_media, fetched here (image only) with a size
//     cap and a timeout;
//   - at most max_images_per_request images + videos;
//   - every image's width x height and every video's frame size at most max_pixels,
//     read from the file header before any pixel is decoded (413 beyond).
// After apply(), every image is Kind::bytes or a canonical allowed path and every video
// a canonical allowed path, so the runtime reads nothing the policy did not check.
// Thread-safety: immutable after construction; apply() may run concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "q3vl/messages.h"

namespace q3vl::server {

struct MediaLimits {
  std::vector<std::filesystem::path> allowed_dirs;  // canonical
  bool allow_remote = false;
  std::int64_t max_remote_bytes = 0;
  int remote_timeout_ms = 0;
  int max_media = 0;
  std::int64_t max_pixels = 0;
};

class MediaPolicy {
 public:
  // Resolves the allowed directories. Throws q3vl::Error(usage) for one that does not
  // exist or is not a directory.
  explicit MediaPolicy(MediaLimits limits);

  // Checks and rewrites the media of `messages` in place. Throws ApiError: 400 naming
  // the field (path outside the allowed dirs, `..`, missing file, bad base64, remote
  // media disabled, video not a file) or 413 (too many media, too many pixels, remote
  // file too large).
  void apply(std::vector<text::Message>& messages) const;

  const MediaLimits& limits() const { return limits_; }

 private:
  std::filesystem::path allowed_path(const std::string& location, const std::string& field) const;
  std::vector<std::uint8_t> fetch(const std::string& url, const std::string& field) const;
  MediaLimits limits_;
};

}  // namespace q3vl::server
