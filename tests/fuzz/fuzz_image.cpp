// Encoded images in every format q3vl reads (JPEG, PNG incl. palette/alpha/16-bit,
// WebP, GIF, BMP; EXIF orientation applied) -> smart resize -> normalize -> patchify,
// the path of an image_url part. Limits are set well below the defaults, so an
// allocation that escapes them is a bomb the malloc limit catches.
#include <cstddef>
#include <cstdint>
#include <span>

#include "harness.h"
#include "q3vl/image.h"
#include "q3vl/processor.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  q3vl::DecodeOptions options;
  options.limits.max_pixels = 4096 * 4096;
  options.limits.max_side = 8192;
  options.alpha = size % 2 ? q3vl::AlphaMode::composite_white : q3vl::AlphaMode::drop;
  q3vl::fuzz::expect_clean([&] {
    const q3vl::Image image = q3vl::decode_image(std::span(data, size), "fuzz", options);
    q3vl::fuzz::require(image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
                        "rgb is width x height x 3");
    q3vl::fuzz::require(image.width * static_cast<std::int64_t>(image.height) <= options.limits.max_pixels,
                        "decoded image within the pixel limit");
    q3vl::ImageProcessorConfig config;
    config.max_pixels = 64 * 32 * 32;  // keep each run fast; the resize path is the same
    const q3vl::VisionInput input = q3vl::preprocess_image(image, config);
    q3vl::fuzz::require(input.pixel_values.size() == static_cast<std::size_t>(input.rows * input.cols),
                        "pixel_values is rows x cols");
  });
  return 0;
}
