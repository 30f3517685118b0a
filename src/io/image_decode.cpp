// decode_image: sniff the format, run its decoder, apply EXIF orientation and the
// alpha policy. The per-format decoders live in image_<format>.cpp.
#include <cstring>
#include <fstream>
#include <iterator>

#include "io/image_codecs.h"
#include "q3vl/error.h"
#include "q3vl/image.h"

namespace q3vl {

const char* to_string(ImageFormat format) {
  switch (format) {
    case ImageFormat::jpeg: return "JPEG";
    case ImageFormat::png: return "PNG";
    case ImageFormat::webp: return "WebP";
    case ImageFormat::gif: return "GIF";
    case ImageFormat::bmp: return "BMP";
    case ImageFormat::unknown: break;
  }
  return "unknown";
}

ImageFormat sniff_image_format(std::span<const std::uint8_t> b) {
  auto starts = [&](const char* magic, std::size_t offset = 0) {
    const std::size_t n = std::strlen(magic);
    return b.size() >= offset + n && std::memcmp(b.data() + offset, magic, n) == 0;
  };
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::jpeg;
  if (starts("\x89PNG\r\n\x1a\n")) return ImageFormat::png;
  if (starts("RIFF") && starts("WEBP", 8)) return ImageFormat::webp;
  if (starts("GIF87a") || starts("GIF89a")) return ImageFormat::gif;
  if (starts("BM")) return ImageFormat::bmp;
  return ImageFormat::unknown;
}

namespace {

// PIL's Image.alpha_composite onto an opaque white background (AlphaComposite.c with
// dst = (255, 255, 255, 255)), the rounding transformers' convert_to_rgb gives RGBA images.
std::uint8_t composite_on_white(std::uint32_t value, std::uint32_t alpha) {
  constexpr std::uint32_t kPrecisionBits = 7;
  const std::uint32_t coef1 = alpha << kPrecisionBits;
  const std::uint32_t coef2 = (255u << kPrecisionBits) - coef1;
  const std::uint32_t t = value * coef1 + 255u * coef2 + (0x80u << kPrecisionBits);
  return static_cast<std::uint8_t>((((t >> 8) + t) >> 8) >> kPrecisionBits);
}

Image to_rgb(io::RawImage raw, AlphaMode alpha) {
  Image out;
  out.width = raw.width;
  out.height = raw.height;
  if (raw.channels == 3) {
    out.rgb = std::move(raw.pixels);
    return out;
  }
  const std::size_t n = static_cast<std::size_t>(raw.width) * raw.height;
  out.rgb.resize(n * 3);
  const std::uint8_t* src = raw.pixels.data();
  std::uint8_t* dst = out.rgb.data();
  for (std::size_t i = 0; i < n; ++i, src += 4, dst += 3) {
    if (alpha == AlphaMode::drop) {
      dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
    } else {
      for (int c = 0; c < 3; ++c) dst[c] = composite_on_white(src[c], src[3]);
    }
  }
  return out;
}

}  // namespace

Image decode_image(std::span<const std::uint8_t> bytes, const std::string& name,
                   const DecodeOptions& options) {
  if (bytes.empty()) {
    throw_error(ErrorKind::format, name, "image", "an encoded image", "an empty (zero-byte) input");
  }
  io::RawImage raw;
  switch (sniff_image_format(bytes)) {
    case ImageFormat::jpeg: raw = io::decode_jpeg(bytes, name, options.limits); break;
    case ImageFormat::png: raw = io::decode_png(bytes, name, options.limits); break;
    case ImageFormat::webp: raw = io::decode_webp(bytes, name, options.limits); break;
    case ImageFormat::gif: raw = io::decode_gif(bytes, name, options.limits); break;
    case ImageFormat::bmp: raw = io::decode_bmp(bytes, name, options.limits); break;
    case ImageFormat::unknown:
      throw_error(ErrorKind::format, name, "image", "a JPEG, PNG, WebP, GIF or BMP file",
                  "an unknown format (no known signature in the first bytes)");
  }
  if (options.apply_exif_orientation && !raw.exif.empty()) {
    io::apply_orientation(raw, io::exif_orientation(raw.exif));
  }
  return to_rgb(std::move(raw), options.alpha);
}

Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::io, path.string(), "cannot open the file for reading");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_error(ErrorKind::io, path.string(), "read error");
  return decode_image(bytes, path.string(), options);
}

}  // namespace q3vl

namespace q3vl::io {

void check_dimensions(std::int64_t width, std::int64_t height, const ImageLimits& limits,
                      const std::string& name) {
  if (width <= 0 || height <= 0) {
    throw_error(ErrorKind::format, name, "dimensions", "width and height > 0",
                std::to_string(width) + "x" + std::to_string(height));
  }
  if (width > limits.max_side || height > limits.max_side) {
    throw_error(ErrorKind::limit, name, "dimensions",
                "each side <= " + std::to_string(limits.max_side) + " pixels",
                std::to_string(width) + "x" + std::to_string(height));
  }
  if (width * height > limits.max_pixels) {
    throw_error(ErrorKind::limit, name, "dimensions",
                "at most " + std::to_string(limits.max_pixels) + " pixels",
                std::to_string(width) + "x" + std::to_string(height) + " = " +
                    std::to_string(width * height) + " pixels");
  }
}

void throw_corrupt(const std::string& name, const std::string& what) {
  throw_error(ErrorKind::format, name, "corrupt or truncated image data: " + what);
}

}  // namespace q3vl::io
