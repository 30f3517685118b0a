#include "support/golden.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "io/safetensors.h"
#include "q3vl/error.h"
#include "support/test_paths.h"

namespace q3vl::testing {
namespace {

constexpr const char* kFormat = "q3vl-hf-goldens/1";

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::format, path.string(), e.what());
  }
}

// Copies a tensor of the expected dtype out of its file (views are unaligned).
template <typename T>
GoldenTensor<T> copy_tensor(const std::filesystem::path& file, const std::string& name,
                            io::DType dtype) {
  io::SafetensorsFile st = io::SafetensorsFile::open(file);
  io::TensorView view = st.tensor(name);
  if (view.dtype != dtype) {
    throw_error(ErrorKind::shape, file.string(), name, io::dtype_name(dtype),
                io::dtype_name(view.dtype));
  }
  GoldenTensor<T> out;
  out.shape = view.shape;
  out.values.resize(static_cast<std::size_t>(view.numel()));
  std::memcpy(out.values.data(), view.data.data(), view.data.size());
  return out;
}

bool file_has(const std::filesystem::path& file, const std::string& name) {
  return std::filesystem::exists(file) && io::SafetensorsFile::open(file).contains(name);
}

}  // namespace

std::string GoldenCase::prompt() const { return json_.at("prompt").get<std::string>(); }

std::vector<std::string> GoldenCase::image_files() const {
  return json_.at("image_files").get<std::vector<std::string>>();
}

std::vector<std::string> GoldenCase::video_files() const {
  return json_.at("video_files").get<std::vector<std::string>>();
}

bool GoldenCase::has_input(const std::string& tensor) const {
  return file_has(dir_ / "inputs.safetensors", tensor);
}

GoldenI64 GoldenCase::input_i64(const std::string& tensor) const {
  return copy_tensor<std::int64_t>(dir_ / "inputs.safetensors", tensor, io::DType::i64);
}

std::vector<std::uint8_t> GoldenCase::pixel_codes(const std::string& media_file) const {
  return copy_tensor<std::uint8_t>(root_ / "pixels.safetensors", media_file + ".pixel_codes",
                                   io::DType::u8)
      .values;
}

GoldenI64 GoldenCase::media_grid_thw(const std::string& media_file) const {
  return copy_tensor<std::int64_t>(root_ / "pixels.safetensors", media_file + ".grid_thw",
                                   io::DType::i64);
}

namespace {

// Concatenates the decoded codes of `files` (the order HF stacks them in pixel_values).
GoldenF32 decode_media(const GoldenCase& c, const std::vector<std::string>& files) {
  GoldenF32 out;
  out.shape = {0, kGoldenPatchValues};
  for (const std::string& file : files) {
    for (std::uint8_t code : c.pixel_codes(file)) {
      // Same float32 operations as torchvision's normalize with mean = std = 127.5.
      out.values.push_back((static_cast<float>(code) - 127.5f) / 127.5f);
    }
  }
  out.shape[0] = out.numel() / kGoldenPatchValues;
  return out;
}

}  // namespace

GoldenF32 GoldenCase::pixel_values() const { return decode_media(*this, image_files()); }
GoldenF32 GoldenCase::video_pixel_values() const { return decode_media(*this, video_files()); }

bool GoldenCase::has_model(const std::string& preset, const std::string& tensor) const {
  return file_has(dir_ / (preset + ".safetensors"), tensor);
}

GoldenF32 GoldenCase::model_f32(const std::string& preset, const std::string& tensor) const {
  return copy_tensor<float>(dir_ / (preset + ".safetensors"), tensor, io::DType::f32);
}

GoldenI64 GoldenCase::model_i64(const std::string& preset, const std::string& tensor) const {
  return copy_tensor<std::int64_t>(dir_ / (preset + ".safetensors"), tensor, io::DType::i64);
}

std::int64_t comparable_greedy_steps(const GoldenF32& margins, float logit_error) {
  std::int64_t steps = 0;
  // Each of the top two logits may be off by logit_error in opposite directions.
  while (steps < margins.numel() && margins.values[static_cast<std::size_t>(steps)] > 2.0f * logit_error) {
    ++steps;
  }
  return steps;
}

GoldenSet GoldenSet::open(const std::filesystem::path& dir) {
  GoldenSet set;
  set.dir_ = dir.empty() ? golden_dir() / "model" : dir;
  set.manifest_ = read_json(set.dir_ / "manifest.json");
  const std::string format = set.manifest_.value("format", std::string());
  if (format != kFormat) {
    throw_error(ErrorKind::format, (set.dir_ / "manifest.json").string(), "format", kFormat,
                "\"" + format + "\"");
  }
  return set;
}

std::vector<std::string> GoldenSet::case_names() const {
  return manifest_.at("cases").get<std::vector<std::string>>();
}

std::vector<std::string> GoldenSet::presets() const {
  return manifest_.at("presets").get<std::vector<std::string>>();
}

GoldenCase GoldenSet::load_case(const std::string& name) const {
  GoldenCase c;
  c.name_ = name;
  c.root_ = dir_;
  c.dir_ = dir_ / "cases" / name;
  c.json_ = read_json(c.dir_ / "case.json");
  return c;
}

std::filesystem::path golden_messages_file(const GoldenCase& c, const std::string& prefix) {
  nlohmann::json messages = c.json().at("messages");
  for (auto& message : messages) {
    if (!message["content"].is_array()) continue;
    for (auto& part : message["content"]) {
      for (const char* key : {"image_url", "video_url"}) {
        if (part.contains(key)) part[key]["url"] = (golden_dir() / "model" / part[key]["url"].get<std::string>()).string();
      }
    }
  }
  const auto path = work_dir() / (prefix + c.name() + ".json");
  std::ofstream(path) << messages.dump();
  return path;
}

}  // namespace q3vl::testing
