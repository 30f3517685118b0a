// The HF side files a model directory carries, loaded by path as the runtime does:
// preprocessor_config.json / video_preprocessor_config.json / processor_config.json
// (load_processor_config, then one small image through the loaded settings) and
// generation_config.json (runtime::load_generation_defaults). The first input byte
// picks the file; the rest is its content.
#include <cstddef>
#include <cstdint>
#include <span>

#include "harness.h"
#include "q3vl/processor.h"
#include "runtime/model_parts.h"

namespace {

// The processed image is small, so settings that are legal but absurd (a huge
// min_pixels) must hit a bound, not the allocator.
q3vl::Image small_image() {
  q3vl::Image image;
  image.width = 37;
  image.height = 23;
  image.rgb.resize(static_cast<std::size_t>(image.width * image.height * 3));
  for (std::size_t i = 0; i < image.rgb.size(); ++i) image.rgb[i] = static_cast<std::uint8_t>(i * 7);
  return image;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto content = std::span<const std::uint8_t>(data + 1, size - 1);
  const auto& dir = q3vl::fuzz::scratch_dir();
  for (const char* name : {"preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json",
                           "generation_config.json"}) {
    std::filesystem::remove(dir / name);
  }
  const int which = data[0] % 4;
  q3vl::fuzz::expect_clean([&] {
    if (which == 3) {
      q3vl::fuzz::write_scratch_file("generation_config.json", content);
      q3vl::runtime::load_generation_defaults(dir, {151645});
      return;
    }
    if (which == 0 || which == 1) q3vl::fuzz::write_scratch_file("preprocessor_config.json", content);
    if (which == 1) q3vl::fuzz::write_scratch_file("video_preprocessor_config.json", content);
    if (which == 2) q3vl::fuzz::write_scratch_file("processor_config.json", content);
    q3vl::ProcessorConfig config = q3vl::load_processor_config(dir);
    config.image.max_resized_pixels = 1 << 20;  // the configurable bound, set low for the fuzzer
    const q3vl::VisionInput input = q3vl::preprocess_image(small_image(), config.image);
    q3vl::fuzz::require(input.pixel_values.size() == static_cast<std::size_t>(input.rows * input.cols),
                        "pixel_values is rows x cols");
  });
  return 0;
}
