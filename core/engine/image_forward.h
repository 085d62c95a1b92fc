// The image side of one forward of a vision-language model, between the scheduler's sequences and
// the model runner's: the M-RoPE positions of the rows each sequence runs (prompt rows from the
// request's table, output rows at index + delta), and the image embeddings spliced into its
// placeholder rows. A request's images go through the vision tower once, when a prefill chunk
// first reaches one of them; the requests of one forward that need it share encode_images calls of
// at most the runner's max_image_patches (the warm-up reserved device memory for that much). The
// embeddings stay with the request (a retracted request recomputes its prompt from them) and its
// pixels are dropped.
// Used on the scheduler thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/runner/model_runner.h"
#include "core/scheduler/scheduler.h"

namespace sable::engine {

// Cuts images of `patches` patches each (in order) into consecutive vision-tower calls of at most
// `budget` patches (0: one call); returns each call's end index. An image over the budget gets a
// call of its own (encode_images refuses it; requests are checked before they get here).
std::vector<size_t> vision_call_groups(std::span<const int64_t> patches, int64_t budget);

class ImageForward {
 public:
  // Fills rs[i].mrope_positions and rs[i].embeds for every seqs[i] with images; the spans point
  // into this object and the requests' embeddings, valid until the next prepare(). Throws what
  // encode_images throws.
  void prepare(runner::ModelRunner& runner, std::span<const scheduler::ModelBackend::Sequence> seqs,
               std::span<runner::ModelRunner::Sequence> rs);

 private:
  std::vector<std::vector<int32_t>> mrope_;
  std::vector<std::vector<runner::ModelRunner::EmbedSpan>> spans_;
};

}  // namespace sable::engine
