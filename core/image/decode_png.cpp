// PNG through libpng's classic API (see image_decode.h). libpng reports errors by longjmp, so the
// two functions that call it keep only plain C state across setjmp; the C++ buffer is allocated
// between them. No gamma or colour-space conversion is applied, as Pillow applies none.
#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstring>
#include <vector>

#include "core/image/decoders.h"

namespace sable::image {

namespace {

struct PngState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[200] = {0};
};

void on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", msg);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void on_read(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (s->size - s->pos < n) png_error(png, "truncated data");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

// Reads the header and sets the transforms; false (message set) on a libpng error.
bool read_header(PngState* s, uint32_t* width, uint32_t* height, int* alpha) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_read_fn(s->png, s, on_read);
  png_read_info(s->png, s->info);
  *width = png_get_image_width(s->png, s->info);
  *height = png_get_image_height(s->png, s->info);
  const int color = png_get_color_type(s->png, s->info);
  const bool trns = png_get_valid(s->png, s->info, PNG_INFO_tRNS) != 0;
  *alpha = (color & PNG_COLOR_MASK_ALPHA) != 0 || trns;
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
  if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(s->png, s->info) < 8)
    png_set_expand_gray_1_2_4_to_8(s->png);
  if (trns) png_set_tRNS_to_alpha(s->png);
  png_set_strip_16(s->png);  // Pillow keeps the high byte of 16-bit samples
  if (!(color & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(s->png);
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  return true;
}

bool read_rows(PngState* s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_image(s->png, rows);
  return true;
}

}  // namespace

RgbImage decode_png(std::string_view bytes, const ImageLimits& limits) {
  PngState s;
  s.data = reinterpret_cast<const uint8_t*>(bytes.data());
  s.size = bytes.size();
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_error, on_warning);
  if (!s.png) throw ImageError(ImageErrorKind::kCorrupt, "libpng could not start a decoder");
  s.info = png_create_info_struct(s.png);
  struct Cleanup {
    PngState* s;
    ~Cleanup() { png_destroy_read_struct(&s->png, s->info ? &s->info : nullptr, nullptr); }
  } cleanup{&s};
  uint32_t width = 0, height = 0;
  int alpha = 0;
  if (!s.info || !read_header(&s, &width, &height, &alpha))
    throw ImageError(ImageErrorKind::kCorrupt, fmt::format("corrupt PNG image: {}", s.message));
  check_pixels(width, height, limits);
  const size_t channels = alpha ? 4 : 3;
  if (png_get_rowbytes(s.png, s.info) != width * channels)
    throw ImageError(ImageErrorKind::kUnsupported, "unsupported PNG pixel layout");
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * channels);
  std::vector<png_bytep> rows(height);
  for (uint32_t y = 0; y < height; ++y) rows[y] = pixels.data() + static_cast<size_t>(y) * width * channels;
  if (!read_rows(&s, rows.data()))
    throw ImageError(ImageErrorKind::kCorrupt, fmt::format("corrupt PNG image: {}", s.message));
  if (alpha) return rgba_to_rgb(static_cast<int32_t>(width), static_cast<int32_t>(height), pixels.data());
  RgbImage img;
  img.width = static_cast<int32_t>(width);
  img.height = static_cast<int32_t>(height);
  img.rgb = std::move(pixels);
  return img;
}

}  // namespace sable::image
