// PNG through libpng: every colour type and bit depth to 8-bit RGB or RGBA.
// Palette and low-bit gray are expanded, tRNS becomes an alpha channel (the caller
// drops or composites it), 16-bit samples keep their high byte (png_set_strip_16,
// what PIL's RGB mode gives). Gamma and colour-profile chunks are ignored, as
// torchvision and PIL do.
//
// libpng reports errors by longjmp to png_jmpbuf. The setjmp functions below keep no
// C++ objects with destructors alive across libpng calls (see image_jpeg.cpp).
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <png.h>

#include "io/image_codecs.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

struct PngSource {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
  char message[256];
};

void on_read(png_structp png, png_bytep out, png_size_t length) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (length > src->size - src->offset) png_error(png, "unexpected end of data (truncated file)");
  std::memcpy(out, src->data + src->offset, length);
  src->offset += length;
}

void on_error(png_structp png, png_const_charp message) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof(src->message), "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

struct PngDecoder {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngSource source{};

  ~PngDecoder() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

bool read_header(PngDecoder& d, png_uint_32* width, png_uint_32* height) {
  if (setjmp(png_jmpbuf(d.png))) return false;
  png_set_read_fn(d.png, &d.source, on_read);
  // We enforce our own limits before decoding; lift libpng's 1,000,000 default.
  png_set_user_limits(d.png, 0x7fffffff, 0x7fffffff);
  png_read_info(d.png, d.info);
  *width = png_get_image_width(d.png, d.info);
  *height = png_get_image_height(d.png, d.info);
  return true;
}

bool prepare_transforms(PngDecoder& d, int* channels) {
  if (setjmp(png_jmpbuf(d.png))) return false;
  const int color_type = png_get_color_type(d.png, d.info);
  png_set_expand(d.png);  // palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha
  png_set_strip_16(d.png);
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(d.png);
  png_set_interlace_handling(d.png);
  png_read_update_info(d.png, d.info);
  *channels = png_get_channels(d.png, d.info);
  return true;
}

bool read_rows(PngDecoder& d, png_bytep* rows) {
  if (setjmp(png_jmpbuf(d.png))) return false;
  png_read_image(d.png, rows);
  png_read_end(d.png, d.info);  // picks up an eXIf chunk stored after the pixels
  return true;
}

}  // namespace

RawImage decode_png(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits) {
  PngDecoder d;
  d.source = PngSource{bytes.data(), bytes.size(), 0, {}};
  d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d.source, on_error, on_warning);
  if (d.png == nullptr) throw_corrupt(name, "libpng could not allocate a decoder");
  d.info = png_create_info_struct(d.png);
  if (d.info == nullptr) throw_corrupt(name, "libpng could not allocate a decoder");

  png_uint_32 width = 0, height = 0;
  if (!read_header(d, &width, &height)) throw_corrupt(name, d.source.message);
  check_dimensions(width, height, limits, name);

  RawImage image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  // Channels after the transformations: 3 or 4 (RGB / RGBA), known before decoding.
  int channels = 0;
  if (!prepare_transforms(d, &channels)) throw_corrupt(name, d.source.message);
  if (channels != 3 && channels != 4) throw_corrupt(name, "unexpected channel count after expansion");
  image.channels = channels;
  const std::size_t row_bytes = static_cast<std::size_t>(width) * channels;
  image.pixels.resize(row_bytes * height);
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = image.pixels.data() + y * row_bytes;
  if (!read_rows(d, rows.data())) throw_corrupt(name, d.source.message);

  png_bytep exif = nullptr;
  png_uint_32 exif_size = 0;
  if (png_get_eXIf_1(d.png, d.info, &exif_size, &exif) != 0 && exif != nullptr && exif_size > 0) {
    image.exif.assign(exif, exif + exif_size);
  }
  return image;
}

}  // namespace q3vl::io
