// Qwen2-VL's M-RoPE positions of a prompt with images (transformers' get_rope_index, images
// only): text tokens count up on all three axes; an image's run of placeholder tokens (one per
// merged token, t × h/merge × w/merge of them) gets (start + frame, start + row, start + column),
// and the text after it continues at start + max(h, w) / merge. Decoding continues each axis at
// (tokens so far + delta), delta = max position + 1 - prompt length.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace sable::image {

struct GridThw {
  int32_t t = 1, h = 0, w = 0;  // in patches, as the processor's image_grid_thw
};

struct MropePositions {
  std::vector<int32_t> positions;  // [3, L]: time row, height row, width row
  int32_t delta = 0;               // added to a decoded token's index for all three axes
};

// Throws std::invalid_argument when the placeholder runs do not match the grids (count or length).
MropePositions mrope_positions(std::span<const int32_t> ids, std::span<const GridThw> grids,
                               int32_t image_token_id, int32_t merge);

}  // namespace sable::image
