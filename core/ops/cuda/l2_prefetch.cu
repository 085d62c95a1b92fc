// L2Prefetch (l2_prefetch.h): the plan per thread, a side stream per op stream, and the kernel.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/ops/cuda/l2_prefetch.h"
#include "core/ops/prefetch_plan.h"
#include "core/ops/weight_ranges.h"

namespace sable::ops::cuda {
namespace {

constexpr int kMaxRanges = 8;
constexpr int kLine = 128;  // bytes a prefetch covers (an L2 line)

struct PrefetchArgs {
  const char* base[kMaxRanges];
  int64_t lines[kMaxRanges];
  int32_t count;
  int64_t total;
};

// Thread i prefetches lines i, i + grid size, ... of the ranges laid end to end.
template <bool kEvictLast>
__global__ void l2_prefetch_kernel(PrefetchArgs a) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < a.total; i += stride) {
    int64_t j = i;
    int r = 0;
    while (r + 1 < a.count && j >= a.lines[r]) j -= a.lines[r++];
    if constexpr (kEvictLast)
      asm volatile("prefetch.global.L2::evict_last [%0];" ::"l"(a.base[r] + j * kLine));
    else
      asm volatile("prefetch.global.L2 [%0];" ::"l"(a.base[r] + j * kLine));
  }
}

size_t env_size(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' ? static_cast<size_t>(std::atoll(v)) : fallback;
}

}  // namespace

bool lora_b_prefetch_enabled() {
  static const bool on = env_size("SABLE_L2_PREFETCH_LORA_B", 0) == 1;
  return on;
}

bool launch_l2_prefetch(const void* const* data, const size_t* bytes, int count,
                        cudaStream_t stream, bool evict_last) {
  PrefetchArgs a{};
  for (int i = 0; i < count && a.count < kMaxRanges; ++i) {
    if (data[i] == nullptr || bytes[i] == 0) continue;
    const auto first = reinterpret_cast<uintptr_t>(data[i]) / kLine;
    const auto last = (reinterpret_cast<uintptr_t>(data[i]) + bytes[i] - 1) / kLine;
    a.base[a.count] = reinterpret_cast<const char*>(first * kLine);
    a.lines[a.count] = static_cast<int64_t>(last - first + 1);
    a.total += a.lines[a.count];
    ++a.count;
  }
  if (a.total == 0) return true;
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>(64, (a.total + kThreads * 16 - 1) / (kThreads * 16));
  if (evict_last)
    l2_prefetch_kernel<true><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  else
    l2_prefetch_kernel<false><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  return cudaGetLastError() == cudaSuccess;
}

struct L2Prefetch::Lane {
  cudaStream_t side = nullptr;
  cudaEvent_t ready = nullptr, done = nullptr;
  bool forked = false;  // something was launched on `side` since the last join
  bool ok = false;
};

struct L2Prefetch::State {
  PrefetchPlan plan;
  size_t max_tokens, lora_tokens;
  bool evict_last = false;            // SABLE_L2_PREFETCH_LAST=1
  int64_t gemm_points = 0;            // GEMM points so far in this forward
  const void* last_gemm_w = nullptr;  // the last GEMM's weight (a composed op repeats it)
  std::unordered_map<cudaStream_t, std::unique_ptr<Lane>> lanes;
  State(size_t budget, size_t tokens, size_t lora)
      : plan(budget), max_tokens(tokens), lora_tokens(lora) {}
};

L2Prefetch::L2Prefetch() {
  // Never freed: a thread_local destructor may run after the CUDA context is gone.
  state_ =
      new State(env_size("SABLE_L2_PREFETCH", 0) << 20, env_size("SABLE_L2_PREFETCH_TOKENS", 8),
                env_size("SABLE_L2_PREFETCH_LORA_TOKENS", 256));
  state_->plan.set_budget(PrefetchPlan::kGemm, env_size("SABLE_L2_PREFETCH_NEXT", 0) << 20);
  state_->evict_last = env_size("SABLE_L2_PREFETCH_LAST", 0) == 1;
}

void L2Prefetch::before_attention(cudaStream_t stream, const void* backend, int32_t layer,
                                  int64_t tokens) {
  fork(stream, PrefetchPlan::kAttention, backend, layer, nullptr,
       tokens > 0 && static_cast<size_t>(tokens) <= state_->max_tokens);
}

void L2Prefetch::before_lora(cudaStream_t stream, const void* backend, int32_t layer,
                             int32_t module, int64_t tokens) {
  fork(stream, PrefetchPlan::kLora, backend, int64_t(layer) * 64 + module, nullptr,
       tokens > 0 && static_cast<size_t>(tokens) <= state_->lora_tokens);
}

void L2Prefetch::fork(cudaStream_t stream, int channel, const void* backend, int64_t point,
                      const void* self, bool launch) {
  std::vector<PrefetchRange> ranges =
      state_->plan.at_point(static_cast<PrefetchPlan::Channel>(channel), backend, point, self);
  if (ranges.empty() || !launch) return;
  const void* data[kMaxRanges];
  size_t bytes[kMaxRanges];
  int n = 0;
  for (const PrefetchRange& r : ranges)
    if (n < kMaxRanges && is_weight_range(r.data, r.bytes)) {
      data[n] = r.data;
      bytes[n++] = r.bytes;
    }
  if (n == 0) return;
  Lane* lp = lane(stream);
  if (lp == nullptr) return;
  Lane& l = *lp;
  if (cudaEventRecord(l.ready, stream) != cudaSuccess ||
      cudaStreamWaitEvent(l.side, l.ready, 0) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  l.forked = true;  // the side stream now follows `stream` (in a capture: joined it)
  if (launch_l2_prefetch(data, bytes, n, l.side, state_->evict_last)) ++launches_;
}

L2Prefetch::Lane* L2Prefetch::lane(cudaStream_t stream) {
  std::unique_ptr<Lane>& slot = state_->lanes[stream];
  if (!slot) {
    slot = std::make_unique<Lane>();
    slot->ok = cudaStreamCreateWithFlags(&slot->side, cudaStreamNonBlocking) == cudaSuccess &&
               cudaEventCreateWithFlags(&slot->ready, cudaEventDisableTiming) == cudaSuccess &&
               cudaEventCreateWithFlags(&slot->done, cudaEventDisableTiming) == cudaSuccess;
    if (!slot->ok) (void)cudaGetLastError();  // off for this stream
  }
  return slot->ok ? slot.get() : nullptr;
}

size_t L2Prefetch::budget() const {
  return state_->plan.budget();
}

void L2Prefetch::on_gemm(cudaStream_t stream, const void* backend, const void* w, size_t bytes,
                         int64_t tokens) {
  if (state_->plan.recording() && is_weight_range(w, bytes)) state_->plan.on_weight(w, bytes);
  if (state_->plan.budget(PrefetchPlan::kGemm) == 0 || backend == nullptr ||
      w == state_->last_gemm_w)
    return;
  state_->last_gemm_w = w;
  fork(stream, PrefetchPlan::kGemm, backend, state_->gemm_points++, w,
       tokens > 0 && static_cast<size_t>(tokens) <= state_->max_tokens);
}

bool L2Prefetch::end_forward(cudaStream_t stream) {
  state_->plan.end_forward();
  state_->gemm_points = 0;
  state_->last_gemm_w = nullptr;
  auto it = state_->lanes.find(stream);
  if (it == state_->lanes.end()) {
    // The side stream and events are made after the first forward on this stream (an eager
    // warm-up before any graph capture), not inside a capture.
    if (state_->plan.budget(PrefetchPlan::kAttention) > 0 ||
        state_->plan.budget(PrefetchPlan::kGemm) > 0)
      (void)lane(stream);
    return true;
  }
  if (!it->second->forked) return true;
  Lane& l = *it->second;
  l.forked = false;
  return cudaEventRecord(l.done, l.side) == cudaSuccess &&
         cudaStreamWaitEvent(stream, l.done, 0) == cudaSuccess;
}

L2Prefetch& l2_prefetch() {
  thread_local L2Prefetch p;
  return p;
}

}  // namespace sable::ops::cuda
