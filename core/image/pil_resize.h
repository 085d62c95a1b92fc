// Bicubic resizing of RGB8 images exactly as Pillow's Image.resize(size, Image.BICUBIC) computes it
// (libImaging/Resample.c): a separable convolution with the a = -0.5 cubic kernel whose support
// widens with the downscale factor (antialiasing), coefficients normalised per output pixel and
// rounded to 22-bit fixed point, each pass rounding and clipping to uint8. The pass order is Pillow
// 13's: horizontal first, unless the height shrinks by more than twice as many pixels as the width
// (Pillow 12 and older always go horizontal first; the orders differ by a few levels at most). Qwen2-VL's processor resizes through Pillow, so the
// same integer arithmetic gives the same pixels, bit for bit.
#pragma once

#include "core/image/image_decode.h"

namespace sable::image {

// `in` resized to out_width × out_height (both > 0). Returns a copy when the size is unchanged.
RgbImage pil_resize_bicubic(const RgbImage& in, int32_t out_width, int32_t out_height);

}  // namespace sable::image
