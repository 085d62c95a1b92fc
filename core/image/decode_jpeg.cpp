// JPEG through libjpeg-turbo (see image_decode.h). Default decompression settings (islow DCT,
// fancy upsampling), which are Pillow's, so the pixels match it. libjpeg reports errors through
// error_exit, which longjmps back here; only plain C state is kept across setjmp.
#include <fmt/format.h>
#include <jpeglib.h>
#include <jerror.h>

#include <csetjmp>
#include <cstdio>
#include <vector>

#include "core/image/decoders.h"

namespace sable::image {

namespace {

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  bool truncated = false;  // libjpeg's "premature end of data" warning: Pillow refuses such files
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings are not fatal to libjpeg, which pads a truncated file with gray; Pillow answers
// "image file is truncated", so that warning is remembered and reported as corrupt data.
void on_emit(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = true;
}

// 0 ok, 1 libjpeg error (message set), 2 CMYK.
int read_header(jpeg_decompress_struct* c, JpegError* err, const std::string_view& b,
                uint32_t* width, uint32_t* height) {
  if (setjmp(err->jump)) return 1;
  jpeg_mem_src(c, reinterpret_cast<const unsigned char*>(b.data()), static_cast<unsigned long>(b.size()));
  jpeg_read_header(c, TRUE);
  if (c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK) return 2;
  c->out_color_space = JCS_RGB;
  *width = c->image_width;
  *height = c->image_height;
  return 0;
}

bool read_pixels(jpeg_decompress_struct* c, JpegError* err, uint8_t* out) {
  if (setjmp(err->jump)) return false;
  jpeg_start_decompress(c);
  const size_t stride = static_cast<size_t>(c->output_width) * 3;
  while (c->output_scanline < c->output_height) {
    JSAMPROW row = out + static_cast<size_t>(c->output_scanline) * stride;
    jpeg_read_scanlines(c, &row, 1);
  }
  jpeg_finish_decompress(c);
  return true;
}

}  // namespace

RgbImage decode_jpeg(std::string_view bytes, const ImageLimits& limits) {
  jpeg_decompress_struct c;
  JpegError err;
  c.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error_exit;
  err.mgr.emit_message = on_emit;
  jpeg_create_decompress(&c);
  struct Cleanup {
    jpeg_decompress_struct* c;
    ~Cleanup() { jpeg_destroy_decompress(c); }
  } cleanup{&c};
  uint32_t width = 0, height = 0;
  const int header = read_header(&c, &err, bytes, &width, &height);
  if (header == 1)
    throw ImageError(ImageErrorKind::kCorrupt, fmt::format("corrupt JPEG image: {}", err.message));
  if (header == 2)
    throw ImageError(ImageErrorKind::kUnsupported, "CMYK JPEG images are not supported");
  check_pixels(width, height, limits);
  RgbImage img;
  img.width = static_cast<int32_t>(width);
  img.height = static_cast<int32_t>(height);
  img.rgb.resize(static_cast<size_t>(width) * height * 3);
  if (!read_pixels(&c, &err, img.rgb.data()))
    throw ImageError(ImageErrorKind::kCorrupt, fmt::format("corrupt JPEG image: {}", err.message));
  if (err.truncated) throw ImageError(ImageErrorKind::kCorrupt, "corrupt JPEG image: the file is truncated");
  return img;
}

}  // namespace sable::image
