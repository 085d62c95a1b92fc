// PrefetchPlan (prefetch_plan.h): one record per (backend, channel, point).
#include "core/ops/prefetch_plan.h"

#include <algorithm>

namespace sable::ops {

std::vector<PrefetchRange> PrefetchPlan::at_point(Channel channel, const void* backend,
                                                  int64_t point, const void* self) {
  Open& o = open_[channel];
  o.rec = nullptr;
  if (budget_[channel] == 0) return {};
  std::vector<PrefetchRange>& rec = after_[{backend, channel, point}];
  std::vector<PrefetchRange> learned = std::move(rec);
  rec.clear();
  o.rec = &rec;
  o.left = budget_[channel];
  o.self = self;
  return learned;
}

bool PrefetchPlan::recording() const {
  for (const Open& o : open_)
    if (o.rec != nullptr && o.left > 0) return true;
  return false;
}

void PrefetchPlan::on_weight(const void* data, size_t bytes) {
  if (data == nullptr || bytes == 0) return;
  for (Open& o : open_) {
    if (o.rec == nullptr || o.left == 0 || data == o.self) continue;
    if (!o.rec->empty() && o.rec->back().data == data) continue;  // the same call, composed
    const size_t take = std::min(bytes, o.left);
    o.rec->push_back({data, take});
    o.left -= take;
  }
}

void PrefetchPlan::end_forward() {
  for (Open& o : open_) o.rec = nullptr;
}

}  // namespace sable::ops
