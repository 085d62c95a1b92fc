// Pillow's bicubic resample in integer arithmetic (see pil_resize.h); names follow Resample.c of
// Pillow 13.0 (which added the vertical-first order below).
#include "core/image/pil_resize.h"

#include <cmath>

namespace sable::image {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kSupport = 2.0;

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per output pixel: the first input index, the tap count, and ksize fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // [out * 2]: xmin, count
  std::vector<int32_t> k;   // [out * ksize]
};

Coeffs precompute(int in_size, int out_size) {
  double filterscale = static_cast<double>(in_size) / out_size;
  const double scale = filterscale;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = kSupport * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[static_cast<size_t>(x)] = bicubic((x + xmin - center + 0.5) * ss);
      ww += w[static_cast<size_t>(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[static_cast<size_t>(x)] / ww : w[static_cast<size_t>(x)];
      c.k[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[static_cast<size_t>(xx) * 2] = xmin;
    c.bounds[static_cast<size_t>(xx) * 2 + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t in) {
  if (in >= (1 << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

// Rows [y0, y0 + rows) of `in`, resized horizontally to out_width.
RgbImage horizontal(const RgbImage& in, int y0, int rows, int out_width, const Coeffs& c) {
  RgbImage out;
  out.width = out_width;
  out.height = rows;
  out.rgb.resize(static_cast<size_t>(out_width) * rows * 3);
  for (int yy = 0; yy < rows; ++yy) {
    const uint8_t* src = in.rgb.data() + static_cast<size_t>(yy + y0) * in.width * 3;
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(yy) * out_width * 3;
    for (int xx = 0; xx < out_width; ++xx) {
      const int xmin = c.bounds[static_cast<size_t>(xx) * 2];
      const int xmax = c.bounds[static_cast<size_t>(xx) * 2 + 1];
      const int32_t* k = c.k.data() + static_cast<size_t>(xx) * c.ksize;
      for (int ch = 0; ch < 3; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < xmax; ++x) ss += src[(x + xmin) * 3 + ch] * k[x];
        dst[xx * 3 + ch] = clip8(ss);
      }
    }
  }
  return out;
}

// `in` resized vertically to out_height; bounds are relative to in's first row minus `shift`.
RgbImage vertical(const RgbImage& in, int out_height, const Coeffs& c, int shift) {
  RgbImage out;
  out.width = in.width;
  out.height = out_height;
  out.rgb.resize(static_cast<size_t>(in.width) * out_height * 3);
  const size_t stride = static_cast<size_t>(in.width) * 3;
  for (int yy = 0; yy < out_height; ++yy) {
    const int ymin = c.bounds[static_cast<size_t>(yy) * 2] - shift;
    const int ymax = c.bounds[static_cast<size_t>(yy) * 2 + 1];
    const int32_t* k = c.k.data() + static_cast<size_t>(yy) * c.ksize;
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(yy) * stride;
    for (size_t i = 0; i < stride; ++i) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += in.rgb[static_cast<size_t>(y + ymin) * stride + i] * k[y];
      dst[i] = clip8(ss);
    }
  }
  return out;
}

}  // namespace

RgbImage pil_resize_bicubic(const RgbImage& in, int32_t out_width, int32_t out_height) {
  const bool need_h = out_width != in.width;
  const bool need_v = out_height != in.height;
  if (!need_h && !need_v) return in;
  const Coeffs cv = precompute(in.height, out_height);
  if (!need_h) return vertical(in, out_height, cv, 0);
  const Coeffs ch = precompute(in.width, out_width);
  // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
  // pixels as the width (a cheaper horizontal pass); the two orders round differently.
  const int shrink_h = in.height - out_height, shrink_w = in.width - out_width;
  if (shrink_h > 0 && shrink_h > shrink_w * 2) {
    const RgbImage tmp = vertical(in, out_height, cv, 0);
    return horizontal(tmp, 0, out_height, out_width, ch);
  }
  // Horizontal first, over only the rows the vertical pass reads.
  const int y_first = cv.bounds[0];
  const int y_last = cv.bounds[static_cast<size_t>(out_height) * 2 - 2] +
                     cv.bounds[static_cast<size_t>(out_height) * 2 - 1];
  RgbImage tmp = horizontal(in, y_first, y_last - y_first, out_width, ch);
  if (!need_v) return tmp;
  return vertical(tmp, out_height, cv, y_first);
}

}  // namespace sable::image
