#include "bench/synthetic_image.h"

namespace q3vl::bench {
namespace {

void put_u16(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
  out[at] = static_cast<std::uint8_t>(v);
  out[at + 1] = static_cast<std::uint8_t>(v >> 8);
}
void put_u32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
  put_u16(out, at, v & 0xffff);
  put_u16(out, at + 2, v >> 16);
}

std::uint8_t ramp(std::int64_t i, std::int64_t n) {
  return n > 1 ? static_cast<std::uint8_t>(255 * i / (n - 1)) : 0;
}

}  // namespace

std::vector<std::uint8_t> synthetic_bmp(std::int64_t width, std::int64_t height) {
  // BITMAPFILEHEADER (14 bytes) + BITMAPINFOHEADER (40 bytes), then rows bottom-up,
  // B, G, R per pixel, each row padded to a multiple of 4 bytes.
  constexpr std::size_t kHeader = 14 + 40;
  const auto row_bytes = static_cast<std::size_t>((width * 3 + 3) / 4 * 4);
  const std::size_t pixels = row_bytes * static_cast<std::size_t>(height);
  std::vector<std::uint8_t> out(kHeader + pixels, 0);
  out[0] = 'B';
  out[1] = 'M';
  put_u32(out, 2, static_cast<std::uint32_t>(out.size()));
  put_u32(out, 10, kHeader);
  put_u32(out, 14, 40);
  put_u32(out, 18, static_cast<std::uint32_t>(width));
  put_u32(out, 22, static_cast<std::uint32_t>(height));
  put_u16(out, 26, 1);   // planes
  put_u16(out, 28, 24);  // bits per pixel
  put_u32(out, 34, static_cast<std::uint32_t>(pixels));
  for (std::int64_t y = 0; y < height; ++y) {
    std::uint8_t* row = out.data() + kHeader + static_cast<std::size_t>(height - 1 - y) * row_bytes;
    for (std::int64_t x = 0; x < width; ++x) {
      row[3 * x] = static_cast<std::uint8_t>((x ^ y) & 255);
      row[3 * x + 1] = ramp(y, height);
      row[3 * x + 2] = ramp(x, width);
    }
  }
  return out;
}

}  // namespace q3vl::bench
