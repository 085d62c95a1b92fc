// Which weights to pull into the GPU's L2 while a decode step's attention runs.
//
// Why: at small decode batches the attention of a layer is latency-bound (a few hundred KB of K/V,
// ~10 us of dependent round trips), so the memory system idles while it runs, and the projections
// after it (o, then gate|up and down) stream their weights at the copy bandwidth. Weights do not
// depend on the activations, so the bytes the next projections will read can be requested during
// the attention (core/ops/cuda/l2_prefetch.h). A forward's op sequence is the same from step to
// step, so the plan learns it: the weights the GEMMs read after attention call (backend, layer) in
// one forward are what that call prefetches in the next, up to a byte budget (the L2 holds them).
//
// Thread-safety: none; one instance per thread (the CUDA ops keep a thread-local one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
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
  // `budget`: the most bytes recorded after one attention call (0 records nothing).
  explicit PrefetchPlan(size_t budget) : budget_(budget) {}

  // An attention call of `backend`'s layer `layer`: the weights recorded after this call in an
  // earlier forward (their leading bytes, within the budget), and from now on the weights the
  // GEMMs read are recorded for it anew (replacing the old record).
  std::vector<PrefetchRange> at_attention(const void* backend, int32_t layer);
  // True while a record is open with budget left: only then does on_weight keep anything.
  bool recording() const { return open_ != nullptr && left_ > 0; }
  // A GEMM reads the weight [data, data + bytes) (the caller has checked that it is weight
  // memory). The same range twice in a row is recorded once (a composed op calls the GEMM again).
  void on_weight(const void* data, size_t bytes);
  // The forward ended: no GEMM after this belongs to its last attention call.
  void end_forward() { open_ = nullptr; }
  size_t budget() const { return budget_; }

 private:
  size_t budget_;
  std::map<std::pair<const void*, int32_t>, std::vector<PrefetchRange>> after_;
  std::vector<PrefetchRange>* open_ = nullptr;
  size_t left_ = 0;
};

}  // namespace sable::ops
