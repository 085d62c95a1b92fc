// DeviceMemory on a CUDA device: cudaMalloc'd, zeroed blocks freed with the object; copies are
// synchronous (weights load once; per-forward transfers go through the runner's stream instead).
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/ops/weight_ranges.h"
#include "core/runner/device_memory.h"
#include "sable/tensor.h"

namespace sable::runner {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(fmt::format("{}: {}", what, cudaGetErrorString(e)));
}

class CudaMemory final : public DeviceMemory {
 public:
  explicit CudaMemory(int32_t index) : index_(index) { check(cudaSetDevice(index), "cudaSetDevice"); }
  ~CudaMemory() override {
    for (auto [p, n] : blocks_) {
      ops::forget_weight_ranges(p, n);  // weights registered by the model host
      cudaFree(p);
    }
  }
  int32_t device_type() const override { return SABLE_DEVICE_CUDA; }
  int32_t device_index() const override { return index_; }
  bool host_accessible() const override { return false; }
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    const size_t n = ((bytes == 0 ? 1 : bytes) + 255) / 256 * 256;
    if (cudaMalloc(&p, n) != cudaSuccess) {
      cudaGetLastError();
      throw std::bad_alloc();
    }
    check(cudaMemset(p, 0, n), "cudaMemset");
    blocks_.emplace_back(p, n);
    return p;
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "upload");
  }
  void download(void* dst, const void* src, size_t bytes) override {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "download");
  }

 private:
  int32_t index_;
  std::vector<std::pair<void*, size_t>> blocks_;
};

}  // namespace

std::unique_ptr<DeviceMemory> make_cuda_memory(int32_t device_index) {
  return std::make_unique<CudaMemory>(device_index);
}

}  // namespace sable::runner
