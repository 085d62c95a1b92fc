// Programmatic dependent launch (PDL) for CUDA kernels of the core and of plugins (header-only,
// CUDA C++ only; include from .cu files).
//
// A decode step is hundreds of small kernels in a row; most of their cost is the gap between one
// kernel's end and the next one's start. Launched with `sable::cuda::launch`, a kernel may be
// scheduled while its predecessor on the stream is still running (Hopper and newer; older devices
// and host code ignore it), so its launch latency hides behind the predecessor's tail. The contract
// for every kernel launched this way:
//   1. call `sable::cuda::wait_for_predecessor()` before its first global-memory read or write
//      (it returns once the previous kernel has finished and its writes are visible); reads of
//      memory no kernel writes (weights) may come first, to overlap the predecessor, and
//   2. call `sable::cuda::allow_dependents()` once it is safe for the NEXT kernel to be scheduled
//      (right after the wait is fine: the next kernel waits for this one to finish anyway).
// A kernel that skips (1) may race with its predecessor. Both are no-ops where PDL is absent
// (before sm_90, or when the launch did not ask for it). The launch works inside CUDA graph
// capture; the edge becomes a programmatic dependency.
// The attribute is on by default (every GPU suite passed with it on an H200, bench/NOTES.md
// "v4"); SABLE_PDL=0 in the environment launches in plain stream order instead (the two device
// calls above are then no-ops), for A/B measurements.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <utility>

namespace sable::cuda {

__device__ __forceinline__ void wait_for_predecessor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::);
#endif
}

// Whether launches ask for PDL (SABLE_PDL, read once per process).
inline bool pdl_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SABLE_PDL");
    return v == nullptr || !(v[0] == '0' && v[1] == '\0');
  }();
  return enabled;
}

// Launches `kernel<<<grid, block, smem, stream>>>(args...)` with programmatic stream
// serialization. Returns the launch error (cudaSuccess when enqueued).
template <class... KArgs, class... Args>
cudaError_t launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = pdl_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace sable::cuda
