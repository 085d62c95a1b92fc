// PrefetchPlan (prefetch_plan.h): one record per (backend, layer) attention call.
#include "core/ops/prefetch_plan.h"

#include <algorithm>

namespace sable::ops {

std::vector<PrefetchRange> PrefetchPlan::at_attention(const void* backend, int32_t layer) {
  open_ = nullptr;
  if (budget_ == 0) return {};
  std::vector<PrefetchRange>& rec = after_[{backend, layer}];
  std::vector<PrefetchRange> learned = std::move(rec);
  rec.clear();
  open_ = &rec;
  left_ = budget_;
  return learned;
}

void PrefetchPlan::on_weight(const void* data, size_t bytes) {
  if (!recording() || data == nullptr || bytes == 0) return;
  if (!open_->empty() && open_->back().data == data) return;  // the same call, composed
  const size_t take = std::min(bytes, left_);
  open_->push_back({data, take});
  left_ -= take;
}

}  // namespace sable::ops
