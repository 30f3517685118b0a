// Image decoding: JPEG, PNG, WebP, GIF and BMP files or memory buffers to 8-bit RGB.
//
// What the decoders produce is chosen to match the reference, Hugging Face
// transformers 5.23 given an image *path* (transformers.image_utils.load_image_as_tensor
// -> torchvision.io.decode_image(mode=RGB, apply_exif_orientation=True)):
//   - EXIF orientation IS applied for JPEG (APP1) and PNG (eXIf), so the result is the
//     upright image; `DecodeOptions::apply_exif_orientation = false` keeps the stored
//     orientation. WebP and GIF keep their stored orientation, as torchvision does.
//   - Alpha and palette transparency are dropped by default: the stored RGB values are
//     kept, as torchvision's RGB mode does. `AlphaMode::composite_white` blends onto
//     white instead, as transformers does for PIL images (and PIL-based servers do).
//   - Grayscale becomes R = G = B; palette images are expanded.
//   - 16-bit PNG keeps the high byte of each sample (what PIL's "RGB" mode gives and
//     what transformers' load_image feeds the processor; torchvision would return
//     uint16 that the processor then mis-normalises as 8-bit).
//   - Animated GIF and WebP: the first frame. BMP (which torchvision refuses) is decoded
//     by FFmpeg's libavcodec, as PIL would load it.
// Codecs are the Debian libraries (libjpeg-turbo, libpng, libwebp, giflib, libavcodec);
// their error handlers are routed into q3vl::Error, never exit() or abort.
//
// Failures (all q3vl::Error; the message names the input):
//   io      the file cannot be opened or read
//   format  zero-size, unknown format, truncated or corrupt data
//   limit   width x height above DecodeOptions::limits.max_pixels — checked from the
//           header, BEFORE any pixel is decoded (decompression bombs)
//
// Thread-safety: the functions are reentrant; an Image is a plain value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace q3vl {

// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
struct Image {
  int width = 0;   // pixels
  int height = 0;  // pixels
  std::vector<std::uint8_t> rgb;  // size width * height * 3

  std::size_t size_bytes() const { return rgb.size(); }
};

enum class ImageFormat { unknown, jpeg, png, webp, gif, bmp };
const char* to_string(ImageFormat format);

enum class AlphaMode {
  drop,             // keep the stored RGB values (the reference for image paths)
  composite_white,  // out = (rgb * a + 255 * (255 - a)) / 255, rounded (PIL's alpha_composite)
};

struct ImageLimits {
  // Largest width * height accepted. The default is PIL's DecompressionBombError
  // threshold (2 x Image.MAX_IMAGE_PIXELS); a 12-megapixel photo is far below it.
  std::int64_t max_pixels = 178956970;
  // Largest width or height accepted (each side), independent of the pixel count.
  std::int64_t max_side = 1 << 16;
};

struct DecodeOptions {
  ImageLimits limits;
  AlphaMode alpha = AlphaMode::drop;
  bool apply_exif_orientation = true;
};

// The format from the leading magic bytes (unknown when none matches).
ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes);

// Decodes an encoded image held in memory. `name` is used in error messages only.
Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name,
                   const DecodeOptions& options = {});

// Reads and decodes a file; errors name the path as given.
Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options = {});

}  // namespace q3vl
