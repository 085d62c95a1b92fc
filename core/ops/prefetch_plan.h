// Which weights to pull into the GPU's L2 while a decode step's attention runs.
//
// Why: at small decode batches the attention of a layer is latency-bound (a few hundred KB of K/V,
// ~10 us of dependent round trips), so the memory system idles while it runs, and the projections
// after it (o, then gate|up and down) stream their weights at the copy bandwidth. Weights do not
// depend on the activations, so the bytes the next projections will read can be requested during
// the attention (core/ops/cuda/l2_prefetch.h). A forward's op sequence is the same from step to
// step, so the plan learns it: the weights the GEMMs read after a point (an attention call, a LoRA
// call) in one forward are what that point prefetches in the next, up to a byte budget (the L2
// holds them).
//
// Thread-safety: none; one instance per thread (the CUDA ops keep a thread-local one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

namespace sable::ops {

struct PrefetchRange {
  const void* data = nullptr;
  size_t bytes = 0;
  bool operator==(const PrefetchRange& o) const { return data == o.data && bytes == o.bytes; }
};

class PrefetchPlan {
 public:
  // Kinds of points, each with its own open record, so that a point of one kind (an attention call
  // that will not prefetch at this batch size) does not take the GEMMs after it from another kind's
  // point before it (the LoRA call after the q|k|v projection, whose next GEMM is o).
  // kGemm: every weight GEMM is a point whose record is the next GEMM's weight (its first bytes,
  // read beside this GEMM, so that DRAM does not idle across the kernel boundary).
  enum Channel : int { kAttention = 0, kLora = 1, kGemm = 2, kChannels = 3 };

  // `budget`: the most bytes recorded after one point, for every channel (0 records nothing).
  explicit PrefetchPlan(size_t budget) {
    for (size_t& b : budget_) b = budget;
  }
  void set_budget(Channel channel, size_t bytes) { budget_[channel] = bytes; }

  // A point `point` of `channel` in a forward of `backend` (e.g. the attention of a layer): the
  // weights recorded after this point in an earlier forward (their leading bytes, within the
  // budget), and from now on the weights the GEMMs read are recorded for it anew (replacing the
  // old record) until the channel's next point. `self`, when set, is never recorded for this point
  // (a GEMM's point must not prefetch the GEMM's own weight).
  std::vector<PrefetchRange> at_point(Channel channel, const void* backend, int64_t point,
                                      const void* self = nullptr);
  // True while some record is open with budget left: only then does on_weight keep anything.
  bool recording() const;
  // A GEMM reads the weight [data, data + bytes) (the caller has checked that it is weight
  // memory): recorded in every open record. The same range twice in a row is recorded once (a
  // composed op calls the GEMM again).
  void on_weight(const void* data, size_t bytes);
  // The forward ended: no GEMM after this belongs to its last points.
  void end_forward();
  size_t budget(Channel channel = kAttention) const { return budget_[channel]; }

 private:
  struct Open {
    std::vector<PrefetchRange>* rec = nullptr;
    size_t left = 0;
    const void* self = nullptr;
  };
  size_t budget_[kChannels];
  std::map<std::tuple<const void*, int, int64_t>, std::vector<PrefetchRange>> after_;
  Open open_[kChannels];
};

}  // namespace sable::ops
