// EXIF orientation: find tag 0x0112 in IFD0 of a TIFF-structured EXIF block and
// rotate/flip the decoded pixels so the result is the upright image, as PIL's
// ImageOps.exif_transpose and torchvision's apply_exif_orientation do.
#include <cstddef>

#include "io/image_codecs.h"

namespace q3vl::io {

int exif_orientation(std::span<const std::uint8_t> tiff) {
  if (tiff.size() < 8) return 1;
  bool little;
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    little = true;
  } else if (tiff[0] == 'M' && tiff[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  auto u16 = [&](std::size_t at) -> std::uint32_t {
    return little ? tiff[at] | (tiff[at + 1] << 8) : (tiff[at] << 8) | tiff[at + 1];
  };
  auto u32 = [&](std::size_t at) -> std::uint32_t {
    return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
  };
  if (u16(2) != 42) return 1;
  const std::size_t ifd = u32(4);
  if (ifd > tiff.size() - 2) return 1;
  const std::size_t count = u16(ifd);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t entry = ifd + 2 + 12 * i;
    if (entry + 12 > tiff.size()) return 1;
    if (u16(entry) == 0x0112 && u16(entry + 2) == 3 /* SHORT */) {
      const int value = static_cast<int>(u16(entry + 8));
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

void apply_orientation(RawImage& image, int orientation) {
  if (orientation <= 1 || orientation > 8) return;
  const int w = image.width, h = image.height, c = image.channels;
  const bool swap = orientation >= 5;  // 5..8 exchange width and height
  const int out_w = swap ? h : w, out_h = swap ? w : h;
  std::vector<std::uint8_t> out(image.pixels.size());
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      int sx = x, sy = y;  // source pixel for output (x, y)
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                     // mirror horizontal
        case 3: sx = w - 1 - x, sy = h - 1 - y; break;     // rotate 180
        case 4: sy = h - 1 - y; break;                     // mirror vertical
        case 5: sx = y, sy = x; break;                     // transpose
        case 6: sx = y, sy = h - 1 - x; break;             // rotate 90 clockwise to display
        case 7: sx = w - 1 - y, sy = h - 1 - x; break;     // transverse
        case 8: sx = w - 1 - y, sy = x; break;             // rotate 90 counter-clockwise
        default: break;
      }
      const std::uint8_t* src = &image.pixels[(static_cast<std::size_t>(sy) * w + sx) * c];
      std::uint8_t* dst = &out[(static_cast<std::size_t>(y) * out_w + x) * c];
      for (int k = 0; k < c; ++k) dst[k] = src[k];
    }
  }
  image.pixels = std::move(out);
  image.width = out_w;
  image.height = out_h;
}

}  // namespace q3vl::io
