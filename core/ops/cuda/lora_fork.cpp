// LoraFork (lora_fork.h): per op stream, a side stream and two events. The "ready" event marks
// where the last GEMM's x was ready; the "done" event marks the end of the side stream's work.
#include "core/ops/cuda/lora_fork.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace sable::ops::cuda {

struct LoraFork::Lane {
  cudaStream_t side = nullptr;
  cudaEvent_t ready = nullptr, done = nullptr;
  const void* x = nullptr;  // the x the ready point was recorded for; nullptr: none known
  bool captured = false;    // recorded while the stream was being captured (a graph fork point)
  bool ok = false;          // the stream and events exist
};

namespace {
struct Lanes {
  std::unordered_map<cudaStream_t, std::unique_ptr<LoraFork::Lane>> by_stream;
};
bool overlaps(const void* a, const void* a_end, const void* b, const void* b_end) {
  auto p = [](const void* v) { return reinterpret_cast<uintptr_t>(v); };
  return p(a) < p(b_end) && p(b) < p(a_end);
}
}  // namespace

LoraFork::Lane* LoraFork::lane(cudaStream_t stream, bool create) {
  // Streams and events are never destroyed: the process's CUDA context may be gone by the time a
  // thread_local destructor would run.
  thread_local Lanes lanes;
  auto it = lanes.by_stream.find(stream);
  if (it != lanes.by_stream.end()) return it->second->ok ? it->second.get() : nullptr;
  if (!create) return nullptr;
  auto l = std::make_unique<Lane>();
  l->ok = cudaStreamCreateWithFlags(&l->side, cudaStreamNonBlocking) == cudaSuccess &&
          cudaEventCreateWithFlags(&l->ready, cudaEventDisableTiming) == cudaSuccess &&
          cudaEventCreateWithFlags(&l->done, cudaEventDisableTiming) == cudaSuccess;
  if (!l->ok) (void)cudaGetLastError();  // a failed creation leaves the fork off for this stream
  Lane* raw = l.get();
  lanes.by_stream.emplace(stream, std::move(l));
  return raw->ok ? raw : nullptr;
}

void LoraFork::before_gemm(cudaStream_t stream, const void* x, const void* x_end, const void* out,
                           const void* out_end) {
  Lane* l = lane(stream, true);
  if (l == nullptr) return;
  l->x = nullptr;
  if (overlaps(x, x_end, out, out_end)) return;  // the GEMM itself rewrites x
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess ||
      cudaEventRecord(l->ready, stream) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  l->x = x;
  l->captured = status == cudaStreamCaptureStatusActive;
}

void LoraFork::forget(cudaStream_t stream) {
  if (Lane* l = lane(stream, false)) l->x = nullptr;
}

cudaStream_t LoraFork::fork(cudaStream_t stream, const void* x) {
  Lane* l = lane(stream, false);
  if (l == nullptr || x == nullptr || l->x != x) return nullptr;
  // A point recorded outside the capture now running (or inside one that ended) is not a fork
  // point of this graph: waiting on it would run the shrink outside the graph.
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  if ((status == cudaStreamCaptureStatusActive) != l->captured) return nullptr;
  if (cudaStreamWaitEvent(l->side, l->ready, 0) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  ++forks_;
  return l->side;
}

bool LoraFork::join(cudaStream_t stream) {
  Lane* l = lane(stream, false);
  return l != nullptr && cudaEventRecord(l->done, l->side) == cudaSuccess &&
         cudaStreamWaitEvent(stream, l->done, 0) == cudaSuccess;
}

LoraFork& lora_fork() {
  thread_local LoraFork f;
  return f;
}

bool lora_fork_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SABLE_LORA_FORK");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

}  // namespace sable::ops::cuda
