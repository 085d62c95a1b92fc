// Decoding encoded image bytes (PNG, JPEG, WebP) into 8-bit RGB with the libraries Debian ships
// (libpng, libjpeg-turbo, libwebp), as Pillow + transformers' convert_to_rgb would see them:
// palette and grayscale expanded, 16-bit samples reduced to their high byte, and any transparency
// composited over opaque white with Pillow's own fixed-point alpha_composite arithmetic.
// The format comes from the bytes' signature, never a file name. Width × height is checked
// against ImageLimits::max_pixels from the header, before the pixel buffer is allocated.
// Thread-safe: every call owns its decoder state.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/image/image_error.h"

namespace sable::image {

// Row-major RGB8: rgb[(y * width + x) * 3 + c].
struct RgbImage {
  int32_t width = 0;
  int32_t height = 0;
  std::vector<uint8_t> rgb;
};

enum class ImageFormat { kPng, kJpeg, kWebp, kUnknown };

// The format the signature announces; kUnknown for anything else (a GIF, a BMP, text...).
ImageFormat sniff_format(std::string_view bytes);

// Throws ImageError: kUnsupported (a known but undecoded format or variant), kCorrupt, kTooLarge.
RgbImage decode_image(std::string_view bytes, const ImageLimits& limits);

// Pillow's alpha_composite of one RGBA pixel over opaque white, written as RGB to `out`.
void composite_on_white(const uint8_t* rgba, uint8_t* out);

}  // namespace sable::image
