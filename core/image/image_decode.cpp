// Signature sniffing, the WebP decoder and alpha handling (see image_decode.h). PNG and JPEG, whose
// libraries report errors through longjmp, live in decode_png.cpp and decode_jpeg.cpp.
#include "core/image/image_decode.h"

#include <fmt/format.h>
#include <webp/decode.h>

#include <cstring>
#include <memory>

#include "core/image/decoders.h"

namespace sable::image {

ImageFormat sniff_format(std::string_view b) {
  if (b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (b.size() >= 3 && std::memcmp(b.data(), "\xFF\xD8\xFF", 3) == 0) return ImageFormat::kJpeg;
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 &&
      std::memcmp(b.data() + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

void composite_on_white(const uint8_t* p, uint8_t* out) {
  // Pillow's ImagingAlphaComposite with dst = (255, 255, 255, 255), PRECISION_BITS 7.
  constexpr uint32_t kBits = 7;
  const uint32_t a = p[3];
  if (a == 0) {
    out[0] = out[1] = out[2] = 255;
    return;
  }
  const uint32_t blend = 255u * (255u - a);
  const uint32_t outa255 = a * 255u + blend;
  const uint32_t coef1 = a * 255u * 255u * (1u << kBits) / outa255;
  const uint32_t coef2 = 255u * (1u << kBits) - coef1;
  for (int c = 0; c < 3; ++c) {
    const uint32_t tmp = p[c] * coef1 + 255u * coef2 + (0x80u << kBits);
    out[c] = static_cast<uint8_t>((((tmp >> 8) + tmp) >> 8) >> kBits);
  }
}

void check_pixels(int64_t width, int64_t height, const ImageLimits& limits) {
  if (width <= 0 || height <= 0)
    throw ImageError(ImageErrorKind::kCorrupt, fmt::format("image has no pixels ({}x{})", width, height));
  if (width * height > limits.max_pixels)
    throw ImageError(ImageErrorKind::kTooLarge,
                     fmt::format("image is too large: {}x{} = {} pixels (the limit is {})", width,
                                 height, width * height, limits.max_pixels));
}

RgbImage rgba_to_rgb(int32_t width, int32_t height, const uint8_t* rgba) {
  RgbImage img;
  img.width = width;
  img.height = height;
  img.rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  const size_t n = static_cast<size_t>(width) * static_cast<size_t>(height);
  for (size_t i = 0; i < n; ++i) composite_on_white(rgba + i * 4, img.rgb.data() + i * 3);
  return img;
}

namespace {

RgbImage decode_webp(std::string_view b, const ImageLimits& limits) {
  const auto* data = reinterpret_cast<const uint8_t*>(b.data());
  WebPBitstreamFeatures f;
  if (WebPGetFeatures(data, b.size(), &f) != VP8_STATUS_OK)
    throw ImageError(ImageErrorKind::kCorrupt, "corrupt WebP image: its header does not parse");
  if (f.has_animation)
    throw ImageError(ImageErrorKind::kUnsupported, "animated WebP images are not supported");
  check_pixels(f.width, f.height, limits);
  RgbImage img;
  img.width = f.width;
  img.height = f.height;
  const size_t n = static_cast<size_t>(f.width) * static_cast<size_t>(f.height);
  if (f.has_alpha) {
    std::vector<uint8_t> rgba(n * 4);
    if (!WebPDecodeRGBAInto(data, b.size(), rgba.data(), rgba.size(), f.width * 4))
      throw ImageError(ImageErrorKind::kCorrupt, "corrupt WebP image: the pixel data does not decode");
    return rgba_to_rgb(f.width, f.height, rgba.data());
  }
  img.rgb.resize(n * 3);
  if (!WebPDecodeRGBInto(data, b.size(), img.rgb.data(), img.rgb.size(), f.width * 3))
    throw ImageError(ImageErrorKind::kCorrupt, "corrupt WebP image: the pixel data does not decode");
  return img;
}

const char* other_format_name(std::string_view b) {
  if (b.size() >= 6 && (b.substr(0, 6) == "GIF87a" || b.substr(0, 6) == "GIF89a")) return "GIF";
  if (b.size() >= 2 && b.substr(0, 2) == "BM") return "BMP";
  if (b.size() >= 4 && (b.substr(0, 4) == "II*\0" || b.substr(0, 4) == std::string_view("MM\0*", 4)))
    return "TIFF";
  if (b.size() >= 12 && b.substr(4, 8) == "ftypavif") return "AVIF";
  if (b.size() >= 12 && (b.substr(4, 8) == "ftypheic" || b.substr(4, 8) == "ftypmif1")) return "HEIC";
  return nullptr;
}

}  // namespace

RgbImage decode_image(std::string_view bytes, const ImageLimits& limits) {
  switch (sniff_format(bytes)) {
    case ImageFormat::kPng: return decode_png(bytes, limits);
    case ImageFormat::kJpeg: return decode_jpeg(bytes, limits);
    case ImageFormat::kWebp: return decode_webp(bytes, limits);
    case ImageFormat::kUnknown: break;
  }
  if (const char* name = other_format_name(bytes))
    throw ImageError(ImageErrorKind::kUnsupported,
                     fmt::format("unsupported image format {} (PNG, JPEG and WebP are decoded)", name));
  throw ImageError(ImageErrorKind::kUnsupported,
                   "unrecognised image data: not a PNG, JPEG or WebP file");
}

}  // namespace sable::image
