// Qwen2-VL preprocessing (see qwen_vl_processor.h).
#include "core/image/qwen_vl_processor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/image/pil_resize.h"

namespace sable::image {

std::pair<int32_t, int32_t> smart_resize(int32_t height, int32_t width, int32_t factor,
                                         int64_t min_pixels, int64_t max_pixels) {
  const double h = height, w = width, f = factor;
  if (std::max(h, w) / std::min(h, w) > 200)
    throw ImageError(ImageErrorKind::kUnsupported,
                     fmt::format("image aspect ratio {}x{} is too extreme (at most 200:1)", width, height));
  // Python's round() rounds halves to even, as nearbyint does in the default rounding mode.
  int64_t h_bar = static_cast<int64_t>(std::nearbyint(h / f)) * factor;
  int64_t w_bar = static_cast<int64_t>(std::nearbyint(w / f)) * factor;
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(h * w / static_cast<double>(max_pixels));
    h_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(static_cast<double>(min_pixels) / (h * w));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {static_cast<int32_t>(h_bar), static_cast<int32_t>(w_bar)};
}

VisionPatches qwen_vl_preprocess(const RgbImage& image, const QwenVlProcessorConfig& cfg) {
  const int32_t p = cfg.patch_size, m = cfg.merge_size, tp = cfg.temporal_patch_size;
  const auto [rh, rw] = smart_resize(image.height, image.width, p * m, cfg.min_pixels, cfg.max_pixels);
  const RgbImage resized = pil_resize_bicubic(image, rw, rh);

  // Normalised planes [3][rh][rw], computed once per pixel.
  std::vector<float> planes(static_cast<size_t>(3) * rh * rw);
  for (int c = 0; c < 3; ++c) {
    float lut[256];
    for (int v = 0; v < 256; ++v)
      lut[v] = static_cast<float>((static_cast<float>(v * (1.0 / 255.0)) - cfg.mean[c]) / cfg.std[c]);
    float* plane = planes.data() + static_cast<size_t>(c) * rh * rw;
    for (size_t i = 0; i < static_cast<size_t>(rh) * rw; ++i) plane[i] = lut[resized.rgb[i * 3 + c]];
  }

  VisionPatches out;
  out.grid_t = 1;
  out.grid_h = rh / p;
  out.grid_w = rw / p;
  out.patch_dim = 3 * tp * p * p;
  out.pixel_values.resize(static_cast<size_t>(out.num_patches()) * out.patch_dim);
  float* dst = out.pixel_values.data();
  // Patch order (block row, block column, row in block, column in block): the m×m patches of one
  // merged token are consecutive.
  for (int bh = 0; bh < out.grid_h / m; ++bh)
    for (int bw = 0; bw < out.grid_w / m; ++bw)
      for (int mh = 0; mh < m; ++mh)
        for (int mw = 0; mw < m; ++mw) {
          const int y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
          for (int c = 0; c < 3; ++c) {
            const float* plane = planes.data() + static_cast<size_t>(c) * rh * rw;
            for (int t = 0; t < tp; ++t)  // a still image: every temporal slice is the same frame
              for (int y = 0; y < p; ++y) {
                const float* row = plane + static_cast<size_t>(y0 + y) * rw + x0;
                dst = std::copy(row, row + p, dst);
              }
          }
        }
  return out;
}

}  // namespace sable::image
