// libFuzzer target for image input (core/image): what a client sends as `image_data` or
// `image_url` is read, decoded and preprocessed by the server, so every byte of it is outside
// input. Byte 0 picks the entry point, the rest is the input:
//   even  the encoded file bytes -> decode_image (PNG / JPEG / WebP headers and data)
//   odd   an image reference (data: URL, raw base64; local files refused, network URLs skipped:
//         fuzzing stays on the loopback-free side) -> read_image_bytes -> decode_image
// A decoded image then goes through the Qwen2-VL preprocessing (smart resize, bicubic resize,
// patchify) with a small pixel budget. Invariants: no crash, leak, hang or exception other than
// ImageError; a decoded image has positive sides within max_pixels and 3 bytes per pixel; the
// patches fill pixel_values exactly, within the pixel budget (see check_preprocessed), and are
// finite.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/image/image_decode.h"
#include "core/image/image_error.h"
#include "core/image/image_source.h"
#include "core/image/qwen_vl_processor.h"

using namespace sable::image;

namespace {

constexpr int64_t kMaxPixels = 1 << 18;  // 512 x 512: large enough for every header path, fast

bool is_network_or_file_url(std::string_view ref) {
  auto starts = [&](std::string_view prefix) {
    if (ref.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(ref[i])) != prefix[i]) return false;
    return true;
  };
  return starts("http://") || starts("https://") || starts("file://");
}

void check_preprocessed(const RgbImage& img) {
  QwenVlProcessorConfig cfg;
  cfg.min_pixels = 28 * 28;
  cfg.max_pixels = 28 * 28 * 16;
  VisionPatches p;
  try {
    p = qwen_vl_preprocess(img, cfg);
  } catch (const ImageError&) {
    return;  // an aspect ratio over 200 is refused, as transformers does
  }
  if (p.grid_t <= 0 || p.grid_h <= 0 || p.grid_w <= 0 || p.grid_h % cfg.merge_size != 0 ||
      p.grid_w % cfg.merge_size != 0)
    std::abort();
  // Within the budget, except where a side is at its minimum (one merged token, 28 px): the
  // smart_resize of transformers keeps it there, letting a very elongated image exceed max_pixels.
  const bool min_side = p.grid_h == cfg.merge_size || p.grid_w == cfg.merge_size;
  if (!min_side &&
      static_cast<int64_t>(p.grid_h) * p.grid_w * cfg.patch_size * cfg.patch_size > cfg.max_pixels)
    std::abort();
  const int64_t dim = 3LL * cfg.temporal_patch_size * cfg.patch_size * cfg.patch_size;
  if (p.patch_dim != dim || static_cast<int64_t>(p.pixel_values.size()) != p.num_patches() * dim)
    std::abort();
  for (float v : p.pixel_values)
    if (!std::isfinite(v)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  ImageLimits limits;
  limits.max_pixels = kMaxPixels;
  limits.max_bytes = 1 << 20;
  limits.allow_local_files = false;
  RgbImage img;
  try {
    std::string bytes;
    if (data[0] % 2 == 0) {
      bytes.assign(input);
    } else {
      if (is_network_or_file_url(input)) return 0;
      bytes = read_image_bytes(std::string(input), limits);
      if (bytes.empty() || static_cast<int64_t>(bytes.size()) > limits.max_bytes) std::abort();
    }
    img = decode_image(bytes, limits);
  } catch (const ImageError&) {
    return 0;
  }
  if (img.width <= 0 || img.height <= 0 ||
      static_cast<int64_t>(img.width) * img.height > limits.max_pixels ||
      img.rgb.size() != static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * 3)
    std::abort();
  check_preprocessed(img);
  return 0;
}
