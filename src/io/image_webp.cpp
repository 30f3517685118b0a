// WebP through libwebp (lossy, lossless, alpha) and libwebpdemux (first frame of an
// animation). torchvision decodes WebP without looking at EXIF, so neither do we: the
// reference result for a WebP path is the stored orientation.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>
#include <memory>

#include "io/image_codecs.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};

RawImage first_animation_frame(std::span<const std::uint8_t> bytes, const std::string& name) {
  WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw_corrupt(name, "libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> decoder(WebPAnimDecoderNew(&data, &options));
  if (!decoder) throw_corrupt(name, "invalid animated WebP");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info)) throw_corrupt(name, "invalid animated WebP");
  std::uint8_t* frame = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(decoder.get(), &frame, &timestamp) || frame == nullptr) {
    throw_corrupt(name, "cannot decode the first WebP animation frame");
  }
  RawImage image;
  image.width = static_cast<int>(info.canvas_width);
  image.height = static_cast<int>(info.canvas_height);
  image.channels = 4;
  image.pixels.assign(frame, frame + static_cast<std::size_t>(image.width) * image.height * 4);
  return image;
}

}  // namespace

RawImage decode_webp(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) throw_corrupt(name, "invalid WebP header (libwebp status " + std::to_string(status) + ")");
  check_dimensions(features.width, features.height, limits, name);
  if (features.has_animation) {
    RawImage image = first_animation_frame(bytes, name);
    check_dimensions(image.width, image.height, limits, name);
    return image;
  }
  RawImage image;
  image.width = features.width;
  image.height = features.height;
  image.channels = features.has_alpha ? 4 : 3;
  const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
  image.pixels.resize(stride * image.height);
  const std::uint8_t* ok =
      features.has_alpha
          ? WebPDecodeRGBAInto(bytes.data(), bytes.size(), image.pixels.data(), image.pixels.size(), static_cast<int>(stride))
          : WebPDecodeRGBInto(bytes.data(), bytes.size(), image.pixels.data(), image.pixels.size(), static_cast<int>(stride));
  if (ok == nullptr) throw_corrupt(name, "libwebp could not decode the bitstream");
  return image;
}

}  // namespace q3vl::io
