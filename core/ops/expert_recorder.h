// Counts which MoE experts the router picks, per layer: the data behind SGLang's
// /start_expert_distribution_record, /stop_... and /dump_expert_distribution_record.
//
// moe_route calls record() with the expert ids [T, k] it selected for a layer when the forward
// context carries a recorder; the server takes snapshot() to dump the counts and reset() to start
// over. Layers and experts are discovered as ids arrive (no configuration needed).
// Thread-safety: every method may be called from any thread (one internal mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace sable::ops {

class ExpertRecorder {
 public:
  // counts[layer][expert]: how many times each expert was selected.
  using Counts = std::vector<std::vector<int64_t>>;

  // Adds one selection per id. Negative layers or ids are ignored.
  void record(int32_t layer, std::span<const int32_t> expert_ids);

  Counts snapshot() const;
  int64_t total() const;  // all selections recorded since the last reset
  void reset();

 private:
  mutable std::mutex mu_;
  Counts counts_;
  int64_t total_ = 0;
};

}  // namespace sable::ops
