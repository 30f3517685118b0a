// Loader for the committed Hugging Face goldens in tests/goldens/model/ (written by
// tests/reference/make_goldens.py; the format is described in tests/reference/README.md).
//
//   GoldenSet set = GoldenSet::open();
//   for (const std::string& name : set.case_names()) {
//     GoldenCase c = set.load_case(name);
//     GoldenI64 ids = c.input_i64("input_ids");           // [1, T]
//     GoldenF32 pixels = c.pixel_values();                  // [sum t*h*w, 1536], decoded
//     GoldenF32 logits = c.model_f32("tiny", "prefill_logits");  // [vocab]
//   }
//
// Every tensor is copied out of its file, so results own their data and outlive the
// set. Every failure (missing file, absent tensor, wrong dtype) throws q3vl::Error
// naming the file and the tensor. Thread-safety: a GoldenSet / GoldenCase is
// immutable after construction; const calls may run concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace q3vl::testing {

// A dense row-major tensor copied out of a golden file.
template <typename T>
struct GoldenTensor {
  std::vector<std::int64_t> shape;
  std::vector<T> values;

  std::int64_t numel() const { return static_cast<std::int64_t>(values.size()); }
  // Size of dimension `i`; negative i counts from the end. Throws std::out_of_range.
  std::int64_t dim(int i) const {
    const int rank = static_cast<int>(shape.size());
    return shape.at(static_cast<std::size_t>(i < 0 ? rank + i : i));
  }
};
using GoldenF32 = GoldenTensor<float>;
using GoldenI64 = GoldenTensor<std::int64_t>;

// Patch width of pixel_values rows: 3 channels x temporal 2 x 16 x 16.
inline constexpr std::int64_t kGoldenPatchValues = 1536;

// How many leading greedy tokens an implementation whose logits differ from HF's
// by at most `logit_error` must reproduce: the steps before the first one whose
// top-1/top-2 margin is within 2 * logit_error (there the argmax may flip, and
// every later step depends on it). `margins` is a case's greedy_margin.
std::int64_t comparable_greedy_steps(const GoldenF32& margins, float logit_error);

class GoldenCase {
 public:
  const std::string& name() const { return name_; }
  const std::filesystem::path& dir() const { return dir_; }
  // case.json as parsed: messages (OpenAI shape), hf_messages, prompt, image_files,
  // video_files, video_sampling, presets.
  const nlohmann::json& json() const { return json_; }
  // The conversation rendered by the official template with add_generation_prompt.
  std::string prompt() const;
  // Image / video files (relative to the goldens directory), each in message order,
  // which is the order HF stacks them in pixel_values / pixel_values_videos.
  std::vector<std::string> image_files() const;
  std::vector<std::string> video_files() const;

  // Processor outputs (inputs.safetensors): input_ids, attention_mask, mm_token_type_ids
  // [1, T]; image_grid_thw [n, 3] and video_grid_thw [m, 3] when the case has them.
  bool has_input(const std::string& tensor) const;
  GoldenI64 input_i64(const std::string& tensor) const;

  // HF's pixel_values / pixel_values_videos: [sum t*h*w, 1536] float32, decoded from
  // the stored uint8 codes as (code - 127.5f) / 127.5f (bit-exact with HF). Empty
  // (shape {0, 1536}) when the case has no image / video.
  GoldenF32 pixel_values() const;
  GoldenF32 video_pixel_values() const;
  // The raw codes of one medium (a file from image_files() / video_files()) and its grid [1, 3].
  std::vector<std::uint8_t> pixel_codes(const std::string& media_file) const;
  GoldenI64 media_grid_thw(const std::string& media_file) const;

  // Model outputs for a preset ("tiny", "tiny-untied"), from <preset>.safetensors:
  //   f32: inputs_embeds [1,T,D], prefill_logits [V], greedy_margin [32],
  //        greedy_max_abs_logit [32], image_embeds [N,D], image_deepstack [K,N,D],
  //        video_embeds, video_deepstack, image.<i>.embeds, image.<i>.deepstack (two_images)
  //   i64: position_ids [3,1,T], rope_deltas [1,1], greedy_ids [32]
  bool has_model(const std::string& preset, const std::string& tensor) const;
  GoldenF32 model_f32(const std::string& preset, const std::string& tensor) const;
  GoldenI64 model_i64(const std::string& preset, const std::string& tensor) const;

 private:
  friend class GoldenSet;
  std::string name_;
  std::filesystem::path dir_;
  std::filesystem::path root_;
  nlohmann::json json_;
};

class GoldenSet {
 public:
  // Reads manifest.json in `dir` (default: golden_dir() / "model").
  // Throws q3vl::Error(io) if it is missing, (format) if it is not the expected format.
  static GoldenSet open(const std::filesystem::path& dir = {});

  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& manifest() const { return manifest_; }
  std::vector<std::string> case_names() const;
  std::vector<std::string> presets() const;
  // Throws q3vl::Error(io) naming the case if its directory or case.json is missing.
  GoldenCase load_case(const std::string& name) const;

 private:
  std::filesystem::path dir_;
  nlohmann::json manifest_;
};

// The case's case.json messages with media urls made absolute, written to
// work_dir()/<prefix><case name>.json for `q3vl run --messages`; returns that path.
std::filesystem::path golden_messages_file(const GoldenCase& c, const std::string& prefix);

}  // namespace q3vl::testing
