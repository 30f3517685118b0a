// preprocess_image (processor.h): smart_resize -> uint8 bicubic resize -> patchify.
#include "q3vl/error.h"
#include "q3vl/processor.h"
#include "vision/patchify.h"
#include "vision/request_bounds.h"
#include "vision/resample.h"
#include "vision/smart_resize.h"

namespace q3vl {

VisionInput preprocess_image(const Image& image, const ImageProcessorConfig& config, const VisionRequest& request) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<std::size_t>(image.width) * image.height * 3) {
    throw_error(ErrorKind::shape, "image", "pixels", "width * height * 3 bytes with width, height > 0",
                std::to_string(image.width) + "x" + std::to_string(image.height) + " with " +
                    std::to_string(image.rgb.size()) + " bytes");
  }
  const std::int64_t factor = config.patch_size * config.merge_size;
  const auto bounds = vision::request_bounds(config.min_pixels, config.max_pixels, factor, request, config.max_resized_pixels);

  Image resized_storage;
  const Image* resized = &image;
  if (config.do_resize) {
    const auto size = vision::smart_resize(image.height, image.width, factor, bounds.min_pixels, bounds.max_pixels);
    if (size.width != image.width || size.height != image.height) {
      resized_storage = vision::resize_bicubic(image, size.width, size.height, request.resample);
      resized = &resized_storage;
    }
  }
  // Without do_resize the decoded size goes through as is (up to ImageLimits::max_pixels).
  if (static_cast<std::int64_t>(resized->width) * resized->height > config.max_resized_pixels) {
    throw_error(ErrorKind::limit, "image", "pixels",
                "at most " + std::to_string(config.max_resized_pixels) + " (VisionProcessorConfig::max_resized_pixels)",
                std::to_string(resized->width) + "x" + std::to_string(resized->height));
  }
  // An image is one temporal group: the frame repeated temporal_patch_size times.
  const std::vector<const Image*> frames(static_cast<std::size_t>(config.temporal_patch_size), resized);

  return vision::patchify_input(frames, config);
}

}  // namespace q3vl
