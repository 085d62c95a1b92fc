// The host-side index and table tensors of Qwen2.5-VL's vision tower, computed from the images'
// patch grids before the tower runs (transformers' get_vision_window_index,
// get_vision_position_ids and the axial rotary embedding):
//   window order   merged units (merge×merge patches) regrouped window by window, each window
//                  window_size/merge/patch units square, windows clipped at the image border;
//                  the tower runs in this order and the merger's output is put back at the end
//   positions      for ops attention_bidirectional, restarting at 0 per window (windowed blocks)
//                  and per image frame (full-attention blocks)
//   rotary table   [N, head_dim] F32, per patch in window order: cos of (row·f, col·f) then their
//                  sin, f_j = theta^(-2j / (head_dim/2)) for j < head_dim/4 (neox-style rope)
// Pure, header-only; shapes in patches (N) and merged units (N / merge²).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace sable::models {

struct VisionGrid {
  int32_t t = 1, h = 0, w = 0;  // patches
};

struct VisionLayout {
  int64_t num_patches = 0;
  std::vector<int32_t> patch_order;       // [N] source patch row of each window-ordered row
  std::vector<int32_t> window_positions;  // [N]
  std::vector<int32_t> image_positions;   // [N]
  std::vector<int32_t> unit_restore;      // [N / merge²] window-ordered row of each merged unit
  std::vector<float> rotary;              // [N, head_dim]
};

inline VisionLayout vision_layout(const std::vector<VisionGrid>& grids, int32_t merge,
                                  int32_t window_units, int32_t head_dim, float theta) {
  VisionLayout out;
  const int32_t unit = merge * merge, quarter = head_dim / 4;
  std::vector<float> inv_freq(static_cast<size_t>(quarter));
  for (int32_t j = 0; j < quarter; ++j)
    inv_freq[static_cast<size_t>(j)] =
        1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(head_dim / 2));
  std::vector<int32_t> window_units_order;  // merged units, window order
  int32_t unit_base = 0;
  for (const VisionGrid& g : grids) {
    const int32_t lh = g.h / merge, lw = g.w / merge;
    for (int32_t t = 0; t < g.t; ++t) {  // each frame attends within itself, as cu_seqlens do
      const int32_t first_row = static_cast<int32_t>(out.patch_order.size());
      const int32_t frame = unit_base + t * lh * lw;
      for (int32_t wh = 0; wh < lh; wh += window_units)
        for (int32_t ww = 0; ww < lw; ww += window_units) {
          int32_t pos = 0;
          for (int32_t i = wh; i < std::min(lh, wh + window_units); ++i)
            for (int32_t j = ww; j < std::min(lw, ww + window_units); ++j) {
              const int32_t u = frame + i * lw + j;
              window_units_order.push_back(u);
              for (int32_t k = 0; k < unit; ++k) {
                out.patch_order.push_back(u * unit + k);
                out.window_positions.push_back(pos++);
                out.image_positions.push_back(static_cast<int32_t>(out.patch_order.size()) - 1 -
                                              first_row);
                // The patch's row and column in the image grid (block-major patch order).
                const int32_t row = i * merge + k / merge, col = j * merge + k % merge;
                for (int32_t part = 0; part < 2; ++part)  // cos, then sin
                  for (int32_t axis = 0; axis < 2; ++axis)
                    for (int32_t f = 0; f < quarter; ++f) {
                      const float angle =
                          static_cast<float>(axis == 0 ? row : col) * inv_freq[static_cast<size_t>(f)];
                      out.rotary.push_back(part == 0 ? std::cos(angle) : std::sin(angle));
                    }
              }
            }
        }
    }
    unit_base += g.t * lh * lw;
  }
  out.num_patches = static_cast<int64_t>(out.patch_order.size());
  out.unit_restore.assign(window_units_order.size(), 0);
  for (size_t r = 0; r < window_units_order.size(); ++r)
    out.unit_restore[static_cast<size_t>(window_units_order[r])] = static_cast<int32_t>(r);
  return out;
}

}  // namespace sable::models
