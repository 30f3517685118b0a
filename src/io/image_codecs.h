// One decoder per container format, behind decode_image (image_decode.cpp).
//
// Each decoder reads the header first, calls check_dimensions() BEFORE decoding any
// pixel, and returns the raw decoded pixels (RGB or RGBA, 8 bits per sample) with the
// EXIF block it found; orientation and alpha handling are done once, by the caller.
// Every decoder throws q3vl::Error(format) naming the input on truncated/corrupt data.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "q3vl/image.h"

namespace q3vl::io {

struct RawImage {
  int width = 0;
  int height = 0;
  int channels = 3;                 // 3 (RGB) or 4 (RGBA, straight alpha)
  std::vector<std::uint8_t> pixels;  // width * height * channels
  std::vector<std::uint8_t> exif;    // TIFF-structured EXIF payload ("II*\0"/"MM\0*" first), or empty
};

// Throws q3vl::Error(format) for a zero side and q3vl::Error(limit) above the limits.
void check_dimensions(std::int64_t width, std::int64_t height, const ImageLimits& limits,
                      const std::string& name);

[[noreturn]] void throw_corrupt(const std::string& name, const std::string& what);

RawImage decode_jpeg(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);
RawImage decode_png(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);
RawImage decode_webp(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);
RawImage decode_gif(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);
RawImage decode_bmp(std::span<const std::uint8_t> bytes, const std::string& name, const ImageLimits& limits);

// Silences FFmpeg's own stderr logging, once per process (BMP and video decoding).
void quiet_ffmpeg_logging();

// EXIF orientation tag (1..8) in a TIFF-structured EXIF payload; 1 when absent or malformed.
int exif_orientation(std::span<const std::uint8_t> tiff);

// Applies an EXIF orientation (1..8) in place: the result is the upright image.
void apply_orientation(RawImage& image, int orientation);

}  // namespace q3vl::io
