#include "server/media_policy.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>

#include <chrono>
#include <fstream>
#include <iterator>
#include <system_error>

#include <httplib.h>

#include "q3vl/error.h"
#include "server/api_error.h"

namespace q3vl::server {
namespace {

namespace fs = std::filesystem;

ApiError too_large(const std::string& field, const std::string& message) {
  return ApiError(413, "invalid_request_error", field + ": " + message, field, "request_too_large");
}

bool inside(const fs::path& path, const fs::path& dir) {
  auto p = path.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++p) {
    if (d->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *d) return false;
  }
  return true;
}

std::vector<std::uint8_t> base64_payload(const std::string& url, const std::string& field) {
  const std::size_t comma = url.find(',');
  const std::string head = url.substr(0, comma);
  if (comma == std::string::npos || head.size() < 7 || head.compare(head.size() - 7, 7, ";base64") != 0) {
    throw bad_request(field, field + ": expected a base64 data: URL (data:<mime>;base64,<payload>)");
  }
  const std::string_view payload = std::string_view(url).substr(comma + 1);
  if (payload.empty() || payload.size() % 4 != 0) {
    throw bad_request(field, field + ": invalid base64 (length " + std::to_string(payload.size()) +
                                 " is not a positive multiple of 4)");
  }
  std::vector<std::uint8_t> out(payload.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(payload.data()),
                                static_cast<int>(payload.size()));
  if (n < 0) throw bad_request(field, field + ": invalid base64 (characters outside the alphabet)");
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = payload.size(); i > 0 && payload[i - 1] == '=' && i + 2 > payload.size(); --i) --size;
  out.resize(size);
  return out;
}

std::vector<std::uint8_t> read_bytes(const fs::path& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad_request(field, field + ": cannot read the file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The name the runtime gives a medium in its errors (GenerateOptions::media_limits).
std::string runtime_name(const text::MediaSource& media, std::size_t message, std::size_t part) {
  if (media.kind == text::MediaSource::Kind::path) return media.location;
  return "messages[" + std::to_string(message) + "].content[" + std::to_string(part) + "]";
}

std::string url_field(std::size_t message, std::size_t part, bool video) {
  return "messages[" + std::to_string(message) + "].content[" + std::to_string(part) + "]." +
         (video ? "video_url" : "image_url") + ".url";
}

}  // namespace

MediaPolicy::MediaPolicy(MediaLimits limits) : limits_(std::move(limits)) {
  for (auto& dir : limits_.allowed_dirs) {
    std::error_code ec;
    const fs::path canonical = fs::canonical(dir, ec);
    if (ec || !fs::is_directory(canonical)) {
      throw_error(ErrorKind::usage, "", "--allowed-media-path", "an existing directory", dir.string());
    }
    dir = canonical;
  }
}

fs::path MediaPolicy::allowed_path(const std::string& location, const std::string& field) const {
  if (limits_.allowed_dirs.empty()) {
    throw bad_request(field, field + ": local media paths are disabled (start the server with --allowed-media-path)");
  }
  const fs::path given(location);
  for (const auto& component : given) {
    if (component == "..") throw bad_request(field, field + ": a path with \"..\" is refused");
  }
  if (!given.is_absolute()) throw bad_request(field, field + ": expected an absolute path");
  std::error_code ec;
  const fs::path resolved = fs::canonical(given, ec);
  // The same answer for "missing" and "outside": a client cannot probe the file system.
  if (ec || !fs::is_regular_file(resolved) ||
      std::none_of(limits_.allowed_dirs.begin(), limits_.allowed_dirs.end(),
                   [&](const fs::path& dir) { return inside(resolved, dir); })) {
    throw bad_request(field, field + ": not a file inside an --allowed-media-path directory");
  }
  return resolved;
}

std::vector<std::uint8_t> MediaPolicy::fetch(const std::string& url, const std::string& field) const {
  if (!limits_.allow_remote) {
    throw bad_request(field, field + ": http(s) media are disabled (start the server with --allow-remote-media)");
  }
  const std::size_t scheme_end = url.find("://");
  const std::size_t path_start = url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string target = path_start == std::string::npos ? "/" : url.substr(path_start);
  httplib::Client client(origin);
  if (!client.is_valid()) throw bad_request(field, field + ": not a usable http(s) URL");
  const auto timeout = std::chrono::milliseconds(limits_.remote_timeout_ms);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::uint8_t> bytes;
  bool over_size = false;
  bool over_time = false;
  auto result = client.Get(target, [&](const char* data, std::size_t n) {
    if (static_cast<std::int64_t>(bytes.size() + n) > limits_.max_remote_bytes) {
      over_size = true;
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      over_time = true;
      return false;
    }
    bytes.insert(bytes.end(), data, data + n);
    return true;
  });
  if (over_size) {
    throw too_large(field, "the remote file is larger than " + std::to_string(limits_.max_remote_bytes) + " bytes");
  }
  if (over_time || !result) {
    throw bad_request(field, field + ": fetching the URL failed (" +
                                 (over_time ? std::string("timed out") : httplib::to_string(result.error())) + ")");
  }
  if (result->status != 200) {
    throw bad_request(field, field + ": fetching the URL gave HTTP status " + std::to_string(result->status));
  }
  return bytes;
}

MediaFiles::~MediaFiles() {
  for (const auto& path : paths_) {
    std::error_code ec;
    fs::remove(path, ec);  // best effort: a temporary directory is cleaned anyway
  }
}

fs::path MediaFiles::write(const std::vector<std::uint8_t>& bytes) {
  std::error_code ec;
  std::string name = (fs::temp_directory_path(ec) / "q3vl-media-XXXXXX").string();
  const int fd = ec ? -1 : mkstemp(name.data());  // mode 0600: no other user reads it
  if (fd < 0) throw ApiError(500, "server_error", "cannot create a temporary file for a data: URL video");
  paths_.emplace_back(name);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool closed = ::close(fd) == 0;
  if (done != bytes.size() || !closed) {
    throw ApiError(500, "server_error", "cannot write a temporary file for a data: URL video (" + name + ")");
  }
  return paths_.back();
}

MediaFiles MediaPolicy::apply(std::vector<text::Message>& messages) const {
  MediaFiles files;
  int count = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    auto* parts = std::get_if<std::vector<text::ContentPart>>(&messages[i].content);
    if (parts == nullptr) continue;
    for (std::size_t j = 0; j < parts->size(); ++j) {
      text::ContentPart& part = (*parts)[j];
      if (part.type == text::ContentPart::Type::text) continue;
      const bool video = part.type == text::ContentPart::Type::video;
      const std::string field = url_field(i, j, video);
      if (++count > limits_.max_media) {
        throw too_large(field, "more than " + std::to_string(limits_.max_media) +
                                   " images and videos in one request (--max-images-per-request)");
      }
      text::MediaSource& media = part.media;
      if (video) {
        // FFmpeg reads video from files only: a data: URL's bytes go to a private file.
        if (media.kind == text::MediaSource::Kind::data_url) {
          media.location = files.write(base64_payload(media.location, field)).string();
        } else if (media.kind == text::MediaSource::Kind::path) {
          media.location = allowed_path(media.location, field).string();
        } else {
          throw bad_request(field, field + ": videos must be base64 data: URLs or local paths inside an "
                                           "--allowed-media-path directory");
        }
        media.kind = text::MediaSource::Kind::path;
        continue;
      }
      std::vector<std::uint8_t> bytes;
      switch (media.kind) {
        case text::MediaSource::Kind::path: bytes = read_bytes(allowed_path(media.location, field), field); break;
        case text::MediaSource::Kind::data_url: bytes = base64_payload(media.location, field); break;
        case text::MediaSource::Kind::http_url: bytes = fetch(media.location, field); break;
        case text::MediaSource::Kind::bytes: bytes = std::move(media.bytes); break;
      }
      media.kind = text::MediaSource::Kind::bytes;
      media.location.clear();
      media.bytes = std::move(bytes);
    }
  }
  return files;
}

void MediaPolicy::limit(GenerateOptions& options) const { options.media_limits.max_pixels = limits_.max_pixels; }

ApiError MediaPolicy::error_of(const Error& error, const std::vector<text::Message>& messages) const {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto* parts = std::get_if<std::vector<text::ContentPart>>(&messages[i].content);
    if (parts == nullptr) continue;
    for (std::size_t j = 0; j < parts->size(); ++j) {
      const text::ContentPart& part = (*parts)[j];
      if (part.type == text::ContentPart::Type::text || error.info().file != runtime_name(part.media, i, j)) continue;
      const std::string field = url_field(i, j, part.type == text::ContentPart::Type::video);
      // The field replaces the runtime's name for the medium (a server-side path).
      std::string detail = error.what();
      if (detail.starts_with(error.info().file + ": ")) detail.erase(0, error.info().file.size() + 2);
      if (error.kind() == ErrorKind::limit) {
        return too_large(field, detail + " (--max-pixels " + std::to_string(limits_.max_pixels) + ")");
      }
      return bad_request(field, field + ": " + detail);
    }
  }
  return from_error(error);
}

}  // namespace q3vl::server
