// Where a model's long-lived memory lives: weights, fused copies, rope caches and the KV pool.
//
// The host side of the plugin boundary allocates through this small interface so that the device
// part stays in one place: the CPU version is here; a CUDA version (cudaMalloc + cudaMemcpy) only
// has to implement the same four functions. Memory is zeroed and freed when the object dies.
// Thread-safety: allocate/upload may be called from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace sable::runner {

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual int32_t device_type() const = 0;  // SableDeviceType
  virtual int32_t device_index() const = 0;
  // True when the host can read and write the memory directly (CPU).
  virtual bool host_accessible() const = 0;
  // `bytes` of zeroed memory, 64-byte aligned, valid until this object is destroyed.
  // Throws std::bad_alloc when it cannot be had.
  virtual void* allocate(size_t bytes) = 0;
  // Copies `bytes` of host memory into memory from allocate().
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  // Copies `bytes` of memory from allocate() (or any device pointer) to host memory.
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
};

// Plain host memory.
std::unique_ptr<DeviceMemory> make_cpu_memory();

// Host memory that costs nothing until written: anonymous zero pages mapped on demand. For tools
// that only need tensors to exist with the right shapes (make-random-model records what a plugin
// loads without holding a multi-gigabyte model in RAM).
std::unique_ptr<DeviceMemory> make_lazy_zero_memory();

#ifdef SABLE_HAVE_CUDA
// cudaMalloc'd device memory on device `index` (cuda_memory.cpp).
std::unique_ptr<DeviceMemory> make_cuda_memory(int32_t index);
#endif

}  // namespace sable::runner
