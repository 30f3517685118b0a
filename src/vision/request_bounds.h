// The pixel bounds one request resolves to: the config's, overridden by the request's
// min/max pixels, and capped by its max_tokens (tokens * factor^2 pixels, one token
// per factor x factor block; min_pixels is lowered to that cap when above it). Throws q3vl::Error(usage) for a non-positive bound,
// q3vl::Error(limit) for a bound above `limit` (VisionProcessorConfig::max_resized_pixels).
#pragma once

#include <cstdint>
#include <string>

#include "q3vl/error.h"
#include "q3vl/processor.h"

namespace q3vl::vision {

struct PixelBounds {
  std::int64_t min_pixels = 0;
  std::int64_t max_pixels = 0;
};

inline PixelBounds request_bounds(std::int64_t min_pixels, std::int64_t max_pixels, std::int64_t factor,
                                  const VisionRequest& request, std::int64_t limit) {
  PixelBounds b{request.min_pixels.value_or(min_pixels), request.max_pixels.value_or(max_pixels)};
  if (request.max_tokens) {
    if (*request.max_tokens <= 0) {
      throw_error(ErrorKind::usage, "request", "max_tokens", "a positive number", std::to_string(*request.max_tokens));
    }
    // Compared by division: a huge max_tokens must not overflow the product.
    const std::int64_t per_token = factor * factor;
    if (*request.max_tokens <= b.max_pixels / per_token) b.max_pixels = *request.max_tokens * per_token;
    // A token cap must hold even below the config's min_pixels (65536 px = 64 tokens for
    // Qwen3-VL), so the lower bound follows it down.
    b.min_pixels = std::min(b.min_pixels, b.max_pixels);
  }
  // min > max is allowed, as in HF: smart_resize then takes its max_pixels branch.
  if (b.min_pixels <= 0 || b.max_pixels <= 0) {
    throw_error(ErrorKind::usage, "request", "min_pixels/max_pixels", "positive pixel counts",
                std::to_string(b.min_pixels) + " / " + std::to_string(b.max_pixels));
  }
  if (b.min_pixels > limit || b.max_pixels > limit) {
    throw_error(ErrorKind::limit, "request", "min_pixels/max_pixels",
                "at most " + std::to_string(limit) + " pixels (VisionProcessorConfig::max_resized_pixels)",
                std::to_string(b.min_pixels) + " / " + std::to_string(b.max_pixels));
  }
  return b;
}

}  // namespace q3vl::vision
