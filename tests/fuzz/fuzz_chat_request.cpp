// POST /v1/chat/completions bodies: what `q3vl serve` does with a body before the
// scheduler sees it — parse_chat_request (JSON, fields, ranges) and then the media
// policy (allowed directories, symlinks, `..`, data: URL base64, image pixel limits,
// video probing, the per-request media count), exactly as handle_chat_completion
// calls them, with limits made by the server's own media_limits().
//
// The rule here is the server's, not harness.h's: every rejection is an ApiError with a
// 4xx status and a message (naming its field when it has one), or a q3vl::Error that
// from_error maps to a 4xx. An accepted request must satisfy every documented limit.
//
// Seeds cannot know this process's scratch directory, so "@MEDIA@" in the input stands
// for the allowed media directory (it holds rgb.png, sub/gray.png, clip.mp4 and out.png,
// a symlink to ../outside.png, an image outside it that the policy must refuse).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "q3vl/image.h"
#include "server/api_error.h"
#include "server/chat_request.h"
#include "server/media_policy.h"
#include "server/server_limits.h"

namespace {

namespace fs = std::filesystem;
using q3vl::fuzz::require;

constexpr std::int64_t kMaxPixels = 28 * 28;  // above the 19x13 images and 32x24 clip, below 40x40
constexpr int kMaxMedia = 3;

const fs::path& media_dir() {
  static const fs::path dir = [] {
    const fs::path d = q3vl::fuzz::scratch_dir() / "media";
    fs::create_directories(d / "sub");
    const fs::path corpus = Q3VL_FUZZ_CORPUS_DIR;
    fs::copy_file(corpus / "image/rgb.png", d / "rgb.png", fs::copy_options::overwrite_existing);
    fs::copy_file(corpus / "image/gray.png", d / "sub/gray.png", fs::copy_options::overwrite_existing);
    fs::copy_file(corpus / "video/h264.mp4", d / "clip.mp4", fs::copy_options::overwrite_existing);
    fs::copy_file(corpus / "image/rgba.png", d.parent_path() / "outside.png", fs::copy_options::overwrite_existing);
    fs::create_symlink(d.parent_path() / "outside.png", d / "out.png");
    return fs::canonical(d);
  }();
  return dir;
}

const q3vl::server::MediaPolicy& policy() {
  static const q3vl::server::MediaPolicy instance = [] {
    q3vl::server::ServerOptions options;
    options.allowed_media_paths = {media_dir()};
    options.max_images_per_request = kMaxMedia;
    options.max_pixels = kMaxPixels;
    q3vl::server::check_options(options);
    return q3vl::server::MediaPolicy(q3vl::server::media_limits(options));
  }();
  return instance;
}

q3vl::GenerateOptions model_defaults() {
  q3vl::GenerateOptions o;
  o.sampling.temperature = 0.7f;
  o.sampling.top_p = 0.8f;
  o.sampling.top_k = 20;
  o.stop_token_ids = {151645, 151643};
  return o;
}

std::string with_media_dir(std::string_view text) {
  static constexpr std::string_view kToken = "@MEDIA@";
  std::string out;
  for (std::size_t at = 0;;) {
    const std::size_t hit = text.find(kToken, at);
    out.append(text.substr(at, hit - at));
    if (hit == std::string_view::npos) return out;
    out += media_dir().string();
    at = hit + kToken.size();
  }
}

void check_rejection(const q3vl::server::ApiError& e) {
  require(e.status >= 400 && e.status <= 499, "a rejected body gets a 4xx status");
  require(std::string_view(e.what()).size() > 0, "a rejection has a message");
  if (e.param && !e.param->empty()) {
    require(std::string_view(e.what()).find(*e.param) != std::string_view::npos,
            "a rejection's message names its field (param)");
  }
}

bool inside(const fs::path& path, const fs::path& dir) {
  const auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end();
}

// What the scheduler may rely on for an accepted request (chat_request.h, media_policy.h).
void check_accepted(const q3vl::server::ChatCompletionRequest& r) {
  const q3vl::SamplingOptions& s = r.options.sampling;
  require(!r.messages.empty(), "accepted: at least one message");
  require(r.options.max_new_tokens >= 1, "accepted: max_new_tokens >= 1");
  require(s.temperature >= 0.0f && s.temperature <= 2.0f, "accepted: temperature in [0, 2]");
  require(s.top_p > 0.0f && s.top_p <= 1.0f, "accepted: top_p in (0, 1]");
  require(s.top_k >= 0, "accepted: top_k >= 0");
  require(s.min_p >= 0.0f && s.min_p <= 1.0f, "accepted: min_p in [0, 1]");
  require(s.presence_penalty >= -2.0f && s.presence_penalty <= 2.0f, "accepted: presence_penalty in [-2, 2]");
  require(s.frequency_penalty >= -2.0f && s.frequency_penalty <= 2.0f, "accepted: frequency_penalty in [-2, 2]");
  require(s.repetition_penalty > 0.0f && s.repetition_penalty <= 100.0f, "accepted: repetition_penalty in (0, 100]");
  require(r.options.stop_strings.size() <= 4, "accepted: at most 4 stop strings");
  for (const auto& stop : r.options.stop_strings) require(!stop.empty(), "accepted: stop strings are non-empty");
  require(r.top_logprobs >= 0 && r.top_logprobs <= 20, "accepted: top_logprobs in [0, 20]");
  require(r.options.top_logprobs == (r.logprobs ? r.top_logprobs : -1), "accepted: top_logprobs only with logprobs");
  require(!r.include_usage || r.stream, "accepted: include_usage only when streaming");
  if (r.options.tools_json) {
    require(nlohmann::json::accept(*r.options.tools_json), "accepted: tools_json is JSON");
    require(nlohmann::json::parse(*r.options.tools_json).is_array(), "accepted: tools_json is an array");
  }
  require(!r.parse_tool_calls || r.options.tools_json, "accepted: tool calls are parsed only with tools");

  int media = 0;
  for (const q3vl::text::Message& m : r.messages) {
    const auto* parts = std::get_if<std::vector<q3vl::text::ContentPart>>(&m.content);
    if (parts == nullptr) continue;
    for (const q3vl::text::ContentPart& part : *parts) {
      if (part.type == q3vl::text::ContentPart::Type::text) continue;
      ++media;
      const q3vl::text::MediaSource& source = part.media;
      if (part.type == q3vl::text::ContentPart::Type::video) {
        require(source.kind == q3vl::text::MediaSource::Kind::path, "accepted: a video is a local path");
        const fs::path path(source.location);
        require(path == fs::canonical(path), "accepted: a video path is canonical");
        require(inside(path, media_dir()) && fs::is_regular_file(path), "accepted: a video is a file in the allowed dir");
        continue;
      }
      require(source.kind == q3vl::text::MediaSource::Kind::bytes && source.location.empty(),
              "accepted: an image is held as bytes");
      q3vl::DecodeOptions options;
      options.limits.max_pixels = kMaxPixels;
      const q3vl::Image image = q3vl::decode_image(source.bytes, "accepted image", options);
      require(static_cast<std::int64_t>(image.width) * image.height <= kMaxPixels, "accepted: image within max_pixels");
    }
  }
  require(media <= kMaxMedia, "accepted: at most max_images_per_request media");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body = with_media_dir(std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    q3vl::server::ChatCompletionRequest request = q3vl::server::parse_chat_request(body, model_defaults(), 4096);
    policy().apply(request.messages);
    check_accepted(request);
  } catch (const q3vl::server::ApiError& e) {
    check_rejection(e);
  } catch (const q3vl::Error& e) {
    // The HTTP layer answers a q3vl::Error with from_error's status.
    check_rejection(q3vl::server::from_error(e));
  }
  return 0;
}
