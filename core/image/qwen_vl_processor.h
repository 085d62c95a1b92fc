// Qwen2-VL / Qwen2.5-VL image preprocessing, as transformers' Qwen2VLImageProcessor(Pil) does it:
//   smart_resize   the size nearest the original whose sides are multiples of patch·merge (28)
//                  with min_pixels <= h·w <= max_pixels, aspect ratio kept as far as possible
//   resize         Pillow bicubic on the RGB8 image (pil_resize.h)
//   normalise      v / 255, then (v - mean) / std per channel (OpenAI CLIP's mean and std)
//   patchify       14×14 patches, each repeated temporal_patch_size (2) times for a still image,
//                  ordered so that the 2×2 patches one merged token covers are consecutive
// The output is what the vision tower takes: pixel_values [grid_t·grid_h·grid_w, C·T·P·P] f32,
// each row laid out (channel, time, patch row, patch column), and image_grid_thw.
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/image/image_decode.h"

namespace sable::image {

struct QwenVlProcessorConfig {
  int32_t patch_size = 14;
  int32_t merge_size = 2;
  int32_t temporal_patch_size = 2;
  int64_t min_pixels = 56 * 56;
  int64_t max_pixels = 28 * 28 * 1280;
  std::array<double, 3> mean = {0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std = {0.26862954, 0.26130258, 0.27577711};
};

struct VisionPatches {
  int32_t grid_t = 0, grid_h = 0, grid_w = 0;  // in patches
  int32_t patch_dim = 0;                        // C · T · P · P
  std::vector<float> pixel_values;              // [grid_t · grid_h · grid_w, patch_dim]

  int64_t num_patches() const { return static_cast<int64_t>(grid_t) * grid_h * grid_w; }
};

// (height, width) after transformers' smart_resize. Throws ImageError (kUnsupported) when the
// aspect ratio exceeds 200, as the processor does.
std::pair<int32_t, int32_t> smart_resize(int32_t height, int32_t width, int32_t factor,
                                         int64_t min_pixels, int64_t max_pixels);

VisionPatches qwen_vl_preprocess(const RgbImage& image, const QwenVlProcessorConfig& config);

}  // namespace sable::image
