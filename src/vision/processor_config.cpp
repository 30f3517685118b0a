// load_processor_config (processor.h): both on-disk layouts, validated field by field.
#include "io/json_file.h"
#include "q3vl/error.h"
#include "q3vl/processor.h"

namespace q3vl {
namespace {

using Json = io::Json;

// A JSON object plus where it came from, for messages like
// "processor_config.json: image_processor.patch_size: expected positive integer, got -1".
struct Section {
  const Json& json;
  std::string file;
  std::string path;  // dotted prefix ("" or "image_processor")

  std::string field(const std::string& key) const { return path.empty() ? key : path + "." + key; }
  const Json* find(const std::string& key) const {
    auto it = json.find(key);
    return it == json.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected, const Json& got) const {
    throw_error(ErrorKind::config, file, field(key), expected, got.dump().substr(0, 60));
  }
  void positive_int(const std::string& key, std::int64_t& out) const {
    const Json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_number_integer() || v->get<std::int64_t>() <= 0) fail(key, "positive integer", *v);
    out = v->get<std::int64_t>();
  }
  void positive_number(const std::string& key, double& out) const {
    const Json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_number() || v->get<double>() <= 0) fail(key, "positive number", *v);
    out = v->get<double>();
  }
  void boolean(const std::string& key, bool& out) const {
    const Json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_boolean()) fail(key, "true or false", *v);
    out = v->get<bool>();
  }
  // A number (applied to all channels) or a list of 3 numbers; `nonzero` for std.
  void channels(const std::string& key, std::array<double, 3>& out, bool nonzero) const {
    const Json* v = find(key);
    if (v == nullptr) return;
    const char* expected = nonzero ? "a non-zero number or 3 non-zero numbers" : "a number or 3 numbers";
    auto check = [&](const Json& x) {
      if (!x.is_number() || (nonzero && x.get<double>() == 0.0)) fail(key, expected, *v);
      return x.get<double>();
    };
    if (v->is_array()) {
      if (v->size() != 3) fail(key, expected, *v);
      for (int c = 0; c < 3; ++c) out[c] = check((*v)[c]);
    } else {
      out.fill(check(*v));
    }
  }
  // size {shortest_edge, longest_edge} (pixel counts), then the top-level overrides
  // min_pixels / max_pixels, as Qwen2VLImageProcessor.__init__ applies them.
  void pixel_bounds(std::int64_t& min_pixels, std::int64_t& max_pixels) const {
    if (const Json* size = find("size")) {
      if (!size->is_object()) fail("size", "an object {shortest_edge, longest_edge}", *size);
      Section s{*size, file, field("size")};
      s.positive_int("shortest_edge", min_pixels);
      s.positive_int("longest_edge", max_pixels);
    }
    positive_int("min_pixels", min_pixels);
    positive_int("max_pixels", max_pixels);
    if (min_pixels > max_pixels) {
      throw_error(ErrorKind::config, file, field("size"), "shortest_edge <= longest_edge (pixel counts)",
                  std::to_string(min_pixels) + " > " + std::to_string(max_pixels));
    }
  }
};

// The fields both processors share. Throws unless the section is a JSON object.
void read_common(const Section& s, VisionProcessorConfig& config) {
  if (!s.json.is_object()) throw_error(ErrorKind::config, s.file, s.path, "a JSON object", s.json.dump().substr(0, 60));
  s.pixel_bounds(config.min_pixels, config.max_pixels);
  s.positive_int("patch_size", config.patch_size);
  s.positive_int("temporal_patch_size", config.temporal_patch_size);
  s.positive_int("merge_size", config.merge_size);
  s.channels("image_mean", config.image_mean, false);
  s.channels("image_std", config.image_std, true);
  s.positive_number("rescale_factor", config.rescale_factor);
  s.boolean("do_resize", config.do_resize);
  s.boolean("do_rescale", config.do_rescale);
  s.boolean("do_normalize", config.do_normalize);
}

ImageProcessorConfig read_image(const Section& s) {
  ImageProcessorConfig config;
  read_common(s, config);
  return config;
}

VideoProcessorConfig read_video(const Section& s) {
  VideoProcessorConfig config;
  read_common(s, config);
  s.positive_number("fps", config.fps);
  s.positive_int("min_frames", config.min_frames);
  s.positive_int("max_frames", config.max_frames);
  s.boolean("do_sample_frames", config.do_sample_frames);
  return config;
}

}  // namespace

ProcessorConfig load_processor_config(const std::filesystem::path& dir) {
  ProcessorConfig config;
  const auto image_file = dir / "preprocessor_config.json";
  const auto video_file = dir / "video_preprocessor_config.json";
  const auto combined_file = dir / "processor_config.json";
  if (std::filesystem::exists(image_file)) {
    const Json image = io::read_json_file(image_file);
    config.image = read_image(Section{image, image_file.string(), ""});
    if (std::filesystem::exists(video_file)) {
      const Json video = io::read_json_file(video_file);
      config.video = read_video(Section{video, video_file.string(), ""});
    }
    return config;
  }
  if (std::filesystem::exists(combined_file)) {
    const Json doc = io::read_json_file(combined_file);
    if (!doc.is_object() || !doc.contains("image_processor")) {
      throw_error(ErrorKind::config, combined_file.string(), "image_processor", "an object", "missing");
    }
    config.image = read_image(Section{doc["image_processor"], combined_file.string(), "image_processor"});
    if (doc.contains("video_processor") && !doc["video_processor"].is_null()) {
      config.video = read_video(Section{doc["video_processor"], combined_file.string(), "video_processor"});
    }
    return config;
  }
  throw_error(ErrorKind::io, dir.string(), "processor config",
              "preprocessor_config.json or processor_config.json in the directory", "neither");
}

}  // namespace q3vl
