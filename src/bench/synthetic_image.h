// A synthetic test image, encoded as an uncompressed 24-bit BMP in memory, so a
// benchmark feeds the product's own media path (decode -> preprocess -> vision graph)
// with no file and almost no decoding cost. The pattern is deterministic (gradients and
// an XOR texture), so every run sees the same pixels.
#pragma once

#include <cstdint>
#include <vector>

namespace q3vl::bench {

// BMP bytes of a width x height image; requires both >= 1. Pixel (x, y) is
// R = 255x/(w-1), G = 255y/(h-1), B = (x ^ y) & 255 (0 for a 1-pixel side).
std::vector<std::uint8_t> synthetic_bmp(std::int64_t width, std::int64_t height);

}  // namespace q3vl::bench
