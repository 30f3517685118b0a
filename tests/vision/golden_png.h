// Reads the committed processor goldens (tests/goldens/processor/, written by
// tests/reference/make_processor_goldens.py): 8-bit gray or RGB PNGs, decoded with
// libpng's simplified API, independently of q3vl's own image decoders.
#pragma once

#include <png.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace q3vl::testing {

struct GoldenPng {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * channels
};

// channels: 1 (gray) or 3 (RGB). Throws std::runtime_error if the file is unreadable.
inline GoldenPng read_golden_png(const std::filesystem::path& path, int channels) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    throw std::runtime_error(path.string() + ": " + image.message);
  }
  image.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  GoldenPng out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    throw std::runtime_error(path.string() + ": " + image.message);
  }
  return out;
}

inline std::filesystem::path processor_golden_dir() { return golden_dir() / "processor"; }

inline nlohmann::json processor_golden_cases() {
  std::ifstream in(processor_golden_dir() / "cases.json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str())["cases"];
}

inline nlohmann::json processor_golden_case(const std::string& name) {
  for (const auto& c : processor_golden_cases()) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no golden case " + name);
}

}  // namespace q3vl::testing
