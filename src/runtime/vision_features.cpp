#include "runtime/vision_features.h"

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include <openssl/evp.h>

#include "core/sha256.h"
#include "io/vision_io.h"
#include "q3vl/error.h"
#include "q3vl/image.h"
#include "q3vl/processor.h"
#include "vision/grid_tables.h"

namespace q3vl::runtime {
namespace {

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path, "", "a readable media file", "cannot open it");
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The payload of "data:<mime>;base64,<payload>" (OpenSSL's base64 decoder).
std::vector<std::uint8_t> data_url_bytes(const std::string& url) {
  const std::size_t comma = url.find(',');
  const std::string head = url.substr(0, comma == std::string::npos ? 0 : comma);
  if (comma == std::string::npos || head.size() < 7 || head.compare(head.size() - 7, 7, ";base64") != 0) {
    throw_error(ErrorKind::unsupported, url.substr(0, 40), "", "a base64 data: URL", "another data: URL form");
  }
  std::string payload;
  for (std::size_t i = comma + 1; i < url.size(); ++i) {
    if (url[i] != '\n' && url[i] != '\r' && url[i] != ' ') payload += url[i];
  }
  if (payload.empty() || payload.size() % 4 != 0) {
    throw_error(ErrorKind::format, url.substr(0, 40), "", "base64 (length a multiple of 4)",
                std::to_string(payload.size()) + " characters");
  }
  std::vector<std::uint8_t> out(payload.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(payload.data()),
                                static_cast<int>(payload.size()));
  if (n < 0) throw_error(ErrorKind::format, url.substr(0, 40), "", "valid base64", "invalid characters");
  // EVP_DecodeBlock counts the bytes of '=' padding too.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = payload.size(); i > 0 && payload[i - 1] == '='; --i) --size;
  out.resize(size);
  return out;
}

// Encoded bytes of a medium (paths are read; only local media are supported here).
std::vector<std::uint8_t> medium_bytes(const text::MediaSource& media) {
  switch (media.kind) {
    case text::MediaSource::Kind::path: return read_file_bytes(media.location);
    case text::MediaSource::Kind::bytes: return media.bytes;
    case text::MediaSource::Kind::data_url: return data_url_bytes(media.location);
    case text::MediaSource::Kind::http_url:
      throw_error(ErrorKind::unsupported, media.location, "", "a local file path or bytes",
                  "an http(s) URL (the runtime does not download media)");
  }
  return {};
}

std::string medium_key(bool video, const std::vector<std::uint8_t>& bytes, const VisionRequest& request,
                       const ImageLimits& limits) {
  core::Sha256 hash;
  // The preprocessing parameters that change pixel_values are part of the identity, and
  // so are the decode limits: a hit must not serve a medium its request's limits refuse.
  hash.update(std::string(video ? "video" : "image") + "|min=" +
              std::to_string(request.min_pixels.value_or(-1)) + "|max=" +
              std::to_string(request.max_pixels.value_or(-1)) + "|limit=" + std::to_string(limits.max_pixels) +
              "," + std::to_string(limits.max_side) + "|");
  hash.update(std::as_bytes(std::span<const std::uint8_t>(bytes)));
  return hash.finish_hex();
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void VisionCache::collect(const std::vector<text::Message>& conversation, const GenerateOptions& options,
                          std::vector<PromptMedium>& images, std::vector<PromptMedium>& videos,
                          VisionRunStats& stats) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<VisionFeatures>> pending;
  std::vector<VisionInput> inputs;
  std::map<std::string, std::shared_ptr<VisionFeatures>> pending_by_key;
  for (std::size_t i = 0; i < conversation.size(); ++i) {
    const auto* parts = std::get_if<std::vector<text::ContentPart>>(&conversation[i].content);
    if (parts == nullptr) continue;
    for (std::size_t j = 0; j < parts->size(); ++j) {
      const text::ContentPart& part = (*parts)[j];
      if (part.type == text::ContentPart::Type::text) continue;
      const bool video = part.type == text::ContentPart::Type::video;
      if (!parts_.vision.present()) {
        throw_error(ErrorKind::unsupported, parts_.dir.string(), "vision", "a package with vision.onnx",
                    "a text-only package given an image or video");
      }
      VisionRequest request;
      request.min_pixels = video ? options.video_min_pixels : options.image_min_pixels;
      request.max_pixels = video ? options.video_max_pixels : options.image_max_pixels;
      const std::vector<std::uint8_t> bytes = medium_bytes(part.media);
      PromptMedium medium{medium_key(video, bytes, request, options.media_limits), nullptr};
      if (auto hit = find(medium.key)) {
        medium.features = std::move(hit);
        ++stats.cache_hits;
      } else if (auto again = pending_by_key.find(medium.key); again != pending_by_key.end()) {
        medium.features = again->second;
      } else {
        // Errors name the medium as GenerateOptions::media_limits documents.
        const std::string name = part.media.kind == text::MediaSource::Kind::path
                                     ? part.media.location
                                     : "messages[" + std::to_string(i) + "].content[" + std::to_string(j) + "]";
        VisionInput input;
        if (video) {
          if (part.media.kind != text::MediaSource::Kind::path) {  // FFmpeg reads files only
            throw_error(ErrorKind::unsupported, name, "", "a video file path", "video bytes");
          }
          input = preprocess_video_file(part.media.location, parts_.processor.video, request, options.media_limits);
        } else {
          DecodeOptions decode;
          decode.limits = options.media_limits;
          input = preprocess_image(decode_image(bytes, name, decode), parts_.processor.image, request);
        }
        auto features = std::make_shared<VisionFeatures>();
        features->is_video = video;
        features->grid = {input.grid_thw[0], input.grid_thw[1], input.grid_thw[2]};
        features->timestamps = input.timestamps;
        features->num_tokens = input.num_tokens;
        pending.push_back(features);
        pending_by_key[medium.key] = features;
        inputs.push_back(std::move(input));
        medium.features = features;
      }
      (video ? videos : images).push_back(std::move(medium));
    }
  }
  if (!pending.empty()) encode(pending, inputs, stats);
  for (const auto& [key, features] : pending_by_key) insert(key, features);
  stats.ms += ms_since(start);
}

std::shared_ptr<const VisionFeatures> VisionCache::find(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto hit = index_.find(key);
  if (hit == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, hit->second);
  return hit->second->second;
}

void VisionCache::insert(const std::string& key, std::shared_ptr<const VisionFeatures> features) {
  std::lock_guard lock(mutex_);
  if (capacity_ == 0) return;
  if (const auto hit = index_.find(key); hit != index_.end()) {
    lru_.splice(lru_.begin(), lru_, hit->second);
    return;
  }
  lru_.emplace_front(key, std::move(features));
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void VisionCache::clear() {
  std::lock_guard lock(mutex_);
  lru_.clear();
  index_.clear();
}

void VisionCache::encode(std::vector<std::shared_ptr<VisionFeatures>>& items, std::vector<VisionInput>& inputs,
                         VisionRunStats& stats) {
  const std::int64_t m = parts_.config.vision.spatial_merge_size;
  const std::int64_t d = parts_.config.vision.out_hidden_size;
  const std::int64_t k = parts_.manifest.deepstack_layers;
  std::vector<vision::GridTHW> grids;
  for (const auto& item : items) grids.push_back(item->grid);
  for (auto& item : items) {
    item->merged.assign(static_cast<std::size_t>(item->num_tokens * d), 0.0f);
    item->deepstack.assign(static_cast<std::size_t>(k * item->num_tokens * d), 0.0f);
  }
  const auto segments = vision::layout_segments(grids, m);
  const Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  for (const vision::SegmentGroup& group : vision::group_segments_by_size(segments)) {
    const auto s = static_cast<std::int64_t>(group.segments.size());
    const std::int64_t l = group.h * group.w;
    const std::int64_t p = inputs[segments[group.segments[0]].item].cols;
    const std::int64_t n = l / (m * m);
    std::vector<float> pixels(static_cast<std::size_t>(s * l * p));
    for (std::int64_t i = 0; i < s; ++i) {
      const vision::VisionSegment& seg = segments[group.segments[static_cast<std::size_t>(i)]];
      const float* from = inputs[seg.item].pixel_values.data() + seg.frame * l * p;
      std::memcpy(pixels.data() + i * l * p, from, static_cast<std::size_t>(l * p) * sizeof(float));
    }
    const auto taps = vision::compute_pos_embed_taps(group.h, group.w, parts_.grid_params);
    const auto rotary = vision::compute_vision_rotary(group.h, group.w, parts_.grid_params);
    const std::int64_t hd = rotary.head_dim;
    std::vector<Ort::Value> values;
    const std::int64_t pix_shape[] = {s, l, p}, tap_shape[] = {l, 4}, rot_shape[] = {l, hd};
    values.push_back(Ort::Value::CreateTensor<float>(cpu, pixels.data(), pixels.size(), pix_shape, 3));
    values.push_back(Ort::Value::CreateTensor<std::int64_t>(
        cpu, const_cast<std::int64_t*>(taps.indices.data()), taps.indices.size(), tap_shape, 2));
    values.push_back(Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(taps.weights.data()),
                                                     taps.weights.size(), tap_shape, 2));
    values.push_back(Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(rotary.cos.data()),
                                                     rotary.cos.size(), rot_shape, 2));
    values.push_back(Ort::Value::CreateTensor<float>(cpu, const_cast<float*>(rotary.sin.data()),
                                                     rotary.sin.size(), rot_shape, 2));
    std::vector<const char*> out_names{io::kVisionMergedTokens};
    if (k > 0) out_names.push_back(io::kVisionDeepstackFeatures);
    auto outputs = parts_.vision.get().run({io::kVisionPixelValues, io::kVisionPosEmbedIndices, io::kVisionPosEmbedWeights,
                                       io::kVisionRotaryCos, io::kVisionRotarySin},
                                      values, out_names);
    ++stats.vision_calls;
    const float* merged = outputs[0].GetTensorData<float>();
    const float* deep = k > 0 ? outputs[1].GetTensorData<float>() : nullptr;
    for (std::int64_t i = 0; i < s; ++i) {
      const vision::VisionSegment& seg = segments[group.segments[static_cast<std::size_t>(i)]];
      VisionFeatures& item = *items[seg.item];
      const std::int64_t token0 = seg.frame * n;  // this segment's first token within its item
      std::memcpy(item.merged.data() + token0 * d, merged + i * n * d, static_cast<std::size_t>(n * d) * sizeof(float));
      for (std::int64_t j = 0; j < k; ++j) {
        std::memcpy(item.deepstack.data() + (j * item.num_tokens + token0) * d, deep + ((j * s + i) * n) * d,
                    static_cast<std::size_t>(n * d) * sizeof(float));
      }
    }
  }
}

}  // namespace q3vl::runtime
