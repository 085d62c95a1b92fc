// The per-format decoders behind decode_image (image_decode.h), and the helpers they share.
// Internal to core/image.
#pragma once

#include <string_view>

#include "core/image/image_decode.h"

namespace sable::image {

RgbImage decode_png(std::string_view bytes, const ImageLimits& limits);
RgbImage decode_jpeg(std::string_view bytes, const ImageLimits& limits);

// Throws kCorrupt for an empty image, kTooLarge above limits.max_pixels.
void check_pixels(int64_t width, int64_t height, const ImageLimits& limits);
// RGBA8 pixels composited over white (composite_on_white) into an RgbImage.
RgbImage rgba_to_rgb(int32_t width, int32_t height, const uint8_t* rgba);

}  // namespace sable::image
