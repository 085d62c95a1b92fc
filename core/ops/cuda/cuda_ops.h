// The CUDA ops table: SableOps over Sable's own kernels and cuBLASLt, for bf16 models on one GPU.
//
// Every op is enqueued on the context's stream and returns without waiting for the device.
// Tensors must live on the context's device. Activations come from the context's arena, which for
// CUDA is backed by device memory (CudaBacking). Thread-safety: as SableOps (one context per thread).
#pragma once

#include <cstddef>

#include "core/ops/arena.h"
#include "sable/ops.h"

namespace sable::ops {

const SableOps* cuda_ops();

// Device memory for an Arena (cudaMalloc / cudaFree on the current device).
class CudaBacking final : public Backing {
 public:
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) noexcept override;
  int32_t device_type() const override;
};

}  // namespace sable::ops
