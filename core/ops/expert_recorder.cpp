// Per-(layer, expert) selection counts for the expert-distribution endpoints (see the header).
#include "core/ops/expert_recorder.h"

namespace sable::ops {

void ExpertRecorder::record(int32_t layer, std::span<const int32_t> expert_ids) {
  if (layer < 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (counts_.size() <= static_cast<size_t>(layer)) counts_.resize(static_cast<size_t>(layer) + 1);
  std::vector<int64_t>& row = counts_[static_cast<size_t>(layer)];
  for (int32_t id : expert_ids) {
    if (id < 0) continue;
    if (row.size() <= static_cast<size_t>(id)) row.resize(static_cast<size_t>(id) + 1, 0);
    ++row[static_cast<size_t>(id)];
    ++total_;
  }
}

ExpertRecorder::Counts ExpertRecorder::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

int64_t ExpertRecorder::total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

void ExpertRecorder::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  counts_.clear();
  total_ = 0;
}

}  // namespace sable::ops
