#include "builder/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "q3vl/error.h"
#include "q3vl/model.h"
#include "runtime/model_parts.h"
#include "runtime/prefill.h"
#include "runtime/prompt.h"
#include "runtime/vision_features.h"

namespace q3vl::builder {
namespace {

constexpr const char* kLinearInputPrefix = "linear_input.";

// A 24-bit BMP file of `rgb(x, y)`: the simplest format the image decoder reads, so the
// built-in images need no encoder library.
template <typename Pixel>
std::vector<std::uint8_t> bmp_file(int width, int height, Pixel rgb) {
  const int row_bytes = (width * 3 + 3) / 4 * 4;
  const std::uint32_t data_bytes = static_cast<std::uint32_t>(row_bytes * height);
  std::vector<std::uint8_t> f(54 + data_bytes, 0);
  auto put32 = [&f](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) f[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  f[0] = 'B';
  f[1] = 'M';
  put32(2, static_cast<std::uint32_t>(f.size()));
  put32(10, 54);         // pixel data offset
  put32(14, 40);         // BITMAPINFOHEADER
  put32(18, static_cast<std::uint32_t>(width));
  put32(22, static_cast<std::uint32_t>(height));  // positive: rows bottom to top
  f[26] = 1;             // planes
  f[28] = 24;            // bits per pixel
  put32(34, data_bytes);
  for (int y = 0; y < height; ++y) {
    std::uint8_t* row = f.data() + 54 + static_cast<std::size_t>(height - 1 - y) * row_bytes;
    for (int x = 0; x < width; ++x) {
      const auto [r, g, b] = rgb(x, y);
      row[3 * x] = b;
      row[3 * x + 1] = g;
      row[3 * x + 2] = r;
    }
  }
  return f;
}

using Rgb = std::array<std::uint8_t, 3>;
std::uint8_t byte(double v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0)); }

// Generated images of several kinds, sizes and aspect ratios.
std::vector<std::vector<std::uint8_t>> builtin_images() {
  std::vector<std::vector<std::uint8_t>> images;
  images.push_back(bmp_file(224, 160, [](int x, int y) {  // diagonal colour gradient
    return Rgb{byte(x * 255.0 / 223), byte(y * 255.0 / 159), byte(255 - (x + y) * 255.0 / 382)};
  }));
  images.push_back(bmp_file(96, 320, [](int x, int y) {  // tall stripes
    const bool band = (y / 20) % 2 == 0;
    return Rgb{byte(band ? 230 : 30), byte(band ? 200 : 60 + x), byte(band ? 40 : 180)};
  }));
  images.push_back(bmp_file(288, 288, [](int x, int y) {  // checkerboard with a ring
    const double r = std::hypot(x - 144.0, y - 144.0);
    const bool dark = ((x / 24) + (y / 24)) % 2 == 0;
    if (std::abs(r - 90.0) < 8.0) return Rgb{220, 30, 40};
    return dark ? Rgb{20, 20, 30} : Rgb{240, 240, 230};
  }));
  {
    std::mt19937 rng(20261204);
    std::uniform_int_distribution<int> noise(-40, 40);
    images.push_back(bmp_file(400, 120, [&](int x, int y) {  // noisy sky over ground
      const bool sky = y < 70 + 10 * std::sin(x / 25.0);
      const int n = noise(rng);
      return sky ? Rgb{byte(90 + n / 2), byte(150 + n / 2), byte(235 + n / 4)}
                 : Rgb{byte(80 + n), byte(120 + n), byte(50 + n / 2)};
    }));
  }
  images.push_back(bmp_file(180, 240, [](int x, int y) {  // blocks of flat colour, like a chart
    static const Rgb palette[] = {{250, 250, 250}, {66, 133, 244}, {219, 68, 55}, {244, 180, 0}, {15, 157, 88}};
    if (y > 200 || x < 20) return Rgb{40, 40, 40};
    const int bar = (x - 20) / 32;
    const int top = 200 - 30 * ((bar * 7) % 5 + 1);
    return y >= top ? palette[1 + bar % 4] : palette[0];
  }));
  return images;
}

text::Message user(std::vector<text::ContentPart> parts) {
  text::Message m;
  m.role = "user";
  m.content = std::move(parts);
  return m;
}

text::ContentPart text_part(std::string s) {
  text::ContentPart p;
  p.type = text::ContentPart::Type::text;
  p.text = std::move(s);
  return p;
}

text::ContentPart image_part(std::vector<std::uint8_t> bytes) {
  text::ContentPart p;
  p.type = text::ContentPart::Type::image;
  p.media.kind = text::MediaSource::Kind::bytes;
  p.media.bytes = std::move(bytes);
  return p;
}

text::Message plain(const std::string& role, const std::string& s) {
  text::Message m;
  m.role = role;
  m.content = s;
  return m;
}

}  // namespace

CalibrationSet builtin_calibration_set() {
  CalibrationSet set;
  set.source = "built-in";
  const auto images = builtin_images();
  auto& c = set.conversations;
  c.push_back({plain("user", "Explain in a few sentences why the sky looks blue during the day and red at sunset.")});
  c.push_back({plain("system", "You are a careful assistant who answers briefly."),
               plain("user", "List three differences between a list and a tuple in Python, with an example of each.")});
  c.push_back({plain("user", "请用中文简要介绍一下长城的历史，以及它为什么被称为世界奇迹之一。")});
  c.push_back({plain("user", "What is 17 * 243 + 1989 / 3? Show the steps, then check the result another way.")});
  c.push_back({plain("user",
                     "Fix the bug:\n```cpp\nint sum(const std::vector<int>& v) {\n  int s;\n  for (size_t i = 0; i <= "
                     "v.size(); ++i) s += v[i];\n  return s;\n}\n```")});
  c.push_back({plain("user", "Write a haiku about autumn rain, then translate it into French and German.")});
  c.push_back({user({image_part(images[0]), text_part("Describe the colours in this image and how they change.")})});
  c.push_back({user({text_part("How many stripes are there, and what colours are they?"), image_part(images[1])})});
  c.push_back({user({image_part(images[2]), text_part("What shapes do you see? Where is the red ring?")})});
  c.push_back({user({image_part(images[3]), text_part("这张图片里有什么？天空和地面分别是什么颜色？")})});
  c.push_back({user({image_part(images[4]), text_part("Read this bar chart: which bar is tallest, and by how much?")})});
  c.push_back({user({text_part("Compare these two pictures."), image_part(images[0]), image_part(images[2])}),
               plain("assistant", "The first is a smooth gradient; the second is a checkerboard with a red ring."),
               user({text_part("Which one would make a better desktop background, and why?")})});
  return set;
}

CalibrationSet load_calibration_set(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw_error(ErrorKind::io, file.string(), "", "a readable JSON Lines file", "cannot open it");
  CalibrationSet set;
  set.source = file.string();
  const std::filesystem::path base = file.parent_path();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string source = file.string() + ":" + std::to_string(number);
    text::ChatRequest request = text::parse_chat_request_json(line, source);
    for (auto& message : request.messages) {
      auto* parts = std::get_if<std::vector<text::ContentPart>>(&message.content);
      if (parts == nullptr) continue;
      for (auto& part : *parts) {
        if (part.type != text::ContentPart::Type::text && part.media.kind == text::MediaSource::Kind::path &&
            std::filesystem::path(part.media.location).is_relative()) {
          part.media.location = (base / part.media.location).string();
        }
      }
    }
    set.conversations.push_back(std::move(request.messages));
  }
  if (set.conversations.empty()) {
    throw_error(ErrorKind::usage, file.string(), "", "at least one conversation (one JSON line each)", "none");
  }
  return set;
}

CalibrationRun record_linear_inputs(const std::filesystem::path& package_dir, const CalibrationSet& set,
                                    CalibrationStats& stats,
                                    const std::function<void(std::int64_t, std::int64_t)>& on_conversation) {
  ModelOptions options;
  options.allow_spinning = false;  // the builder's own threads (quantization) share the cores
  const auto model = Model::load(package_dir, options);
  const runtime::ModelParts& parts = model->parts();
  std::vector<std::string> observed;
  for (const auto& graph : parts.manifest.graphs) {
    if (graph.name != "decoder") continue;
    for (const auto& output : graph.outputs) {
      if (output.name.rfind(kLinearInputPrefix, 0) == 0) observed.push_back(output.name);
    }
  }
  if (observed.empty()) {
    throw_error(ErrorKind::usage, package_dir.string(), "decoder", "a calibration decoder (linear_input.* outputs)",
                "none");
  }
  runtime::DecoderRunner runner(parts);
  const std::size_t prefix = std::string(kLinearInputPrefix).size();
  runner.observe_outputs(observed, [&stats, prefix](const std::string& name, std::span<const float> rows,
                                                    std::int64_t width) {
    stats.append(name.substr(prefix), rows, width);
  });
  runtime::VisionCache vision(parts);
  CalibrationRun run;
  const GenerateOptions& defaults = model->default_options();
  for (const auto& conversation : set.conversations) {
    const std::string which = set.source + ": conversation " + std::to_string(run.conversations + 1);
    std::vector<runtime::PromptMedium> images, videos;
    runtime::VisionRunStats vision_stats;
    vision.collect(conversation, defaults, images, videos, vision_stats);
    const runtime::Prompt prompt = runtime::build_prompt(parts, conversation, defaults, images, videos);
    const auto tokens = static_cast<std::int64_t>(prompt.ids.size());
    if (tokens == 0 || tokens > model->context_length()) {
      throw_error(ErrorKind::limit, which, "prompt_tokens",
                  "1 to " + std::to_string(model->context_length()) + " tokens (the model's context)",
                  std::to_string(tokens));
    }
    runner.cache().reserve(tokens);
    runner.cache().set_length(0);
    runtime::prefill(runner, prompt, 0, parts.options.prefill_chunk_tokens);
    run.tokens += tokens;
    ++run.conversations;
    if (on_conversation) on_conversation(run.conversations, static_cast<std::int64_t>(set.conversations.size()));
  }
  return run;
}

}  // namespace q3vl::builder
