// The image side of one forward of a vision-language model, between the scheduler's sequences and
// the model runner's: the M-RoPE positions of the rows each sequence runs (prompt rows from the
// request's table, output rows at index + delta), and the image embeddings spliced into its
// placeholder rows. A request's images go through the vision tower once, when a prefill chunk
// first reaches one of them; the requests of one forward that need it share one encode_images
// call. The embeddings stay with the request (a retracted request recomputes its prompt from them)
// and its pixels are dropped.
// Used on the scheduler thread only.
#pragma once

#include <span>
#include <vector>

#include "core/runner/model_runner.h"
#include "core/scheduler/scheduler.h"

namespace sable::engine {

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
