// The images of one request (vision-language models), as the engine prepares them and the
// scheduler carries them to the model backend: where each image's placeholder run sits in the
// prompt, its preprocessed pixels until the vision tower has run, the embeddings it produced, the
// prompt's M-RoPE positions, and a content hash per image.
//
// The radix cache keys prompts by token ids, and every image's placeholder tokens are the same id:
// cache_key() replaces them with values derived from the image's hash, so a repeated image reuses
// its cached prefix and a different image never does.
//
// Thread-safety: built by the submitting thread, then owned by the scheduler thread (which fills
// `embeds` and drops `pixel_values` when the request's prefill first reaches an image).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace sable::scheduler {

struct RequestImage {
  int64_t row = 0;               // first placeholder token of the image in the prompt
  int32_t tokens = 0;            // placeholder tokens: t * h * w / merge²
  int32_t grid[3] = {1, 0, 0};   // (t, h, w) in patches, as the processor's image_grid_thw
  uint64_t hash = 0;             // of the preprocessed pixel values (what the tower sees)
};

struct RequestImages {
  std::vector<RequestImage> images;  // in prompt order
  int32_t merge = 2;                 // the spatial merge size
  // [sum t*h*w, patch_dim] f32, image after image; emptied once `embeds` is filled.
  std::vector<float> pixel_values;
  int32_t patch_dim = 0;
  // M-RoPE positions of the prompt, [3, prompt_len] (time row, height row, width row); a row past
  // the prompt (output tokens) has index + mrope_delta on all three axes.
  std::vector<int32_t> mrope;
  int32_t mrope_delta = 0;
  // [sum tokens, hidden] f32, image after image: the vision tower's output, computed once per
  // request on the scheduler thread; empty until then.
  std::vector<float> embeds;

  int64_t prompt_len() const { return static_cast<int64_t>(mrope.size() / 3); }
  // Position of `row` (prompt or output) on `axis` (0 time, 1 height, 2 width).
  int32_t position(int64_t row, int32_t axis) const {
    if (row < prompt_len()) return mrope[static_cast<size_t>(axis * prompt_len() + row)];
    return static_cast<int32_t>(row) + mrope_delta;
  }
  // `tokens` (the prompt, possibly followed by output) with every image placeholder token
  // replaced by a negative value drawn from its image's hash and its index in the run.
  std::vector<int32_t> cache_key(std::span<const int32_t> tokens) const;
};

}  // namespace sable::scheduler
