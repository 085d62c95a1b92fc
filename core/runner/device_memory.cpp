// CPU implementations of DeviceMemory: populated host pages, and lazily mapped zero pages.
#include "core/runner/device_memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/ops/cpu/qrepack.h"
#include "core/ops/host_pages.h"
#include "core/ops/weight_ranges.h"
#include "sable/tensor.h"

namespace sable::runner {
namespace {

// Weights and the KV pool: populated allocations (core/ops/host_pages.h), so that neither loading
// nor the first decode steps that write fresh KV pages take a page fault per 4 KiB.
class CpuMemory final : public DeviceMemory {
 public:
  ~CpuMemory() override {
    for (auto& [p, n] : blocks_) {
      ops::cpu::x16_forget(p, n);  // the weights' interleaved copies (core/ops/cpu/qrepack.h)
      ops::forget_weight_ranges(p, n);
      ops::free_populated(p, n);
    }
  }
  int32_t device_type() const override { return SABLE_DEVICE_CPU; }
  int32_t device_index() const override { return 0; }
  bool host_accessible() const override { return true; }
  void* allocate(size_t bytes) override {
    const size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) / 64 * 64;
    void* p = ops::allocate_populated(rounded);
    if (p == nullptr) throw std::bad_alloc();
    blocks_.emplace_back(p, rounded);
    return p;
  }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }

 private:
  std::vector<std::pair<void*, size_t>> blocks_;
};

class LazyZeroMemory final : public DeviceMemory {
 public:
  ~LazyZeroMemory() override {
    for (auto& [p, n] : maps_) {
      ops::cpu::x16_forget(p, n);
      ops::forget_weight_ranges(p, n);
      munmap(p, n);
    }
  }
  int32_t device_type() const override { return SABLE_DEVICE_CPU; }
  int32_t device_index() const override { return 0; }
  bool host_accessible() const override { return true; }
  void* allocate(size_t bytes) override {
    const size_t n = bytes == 0 ? 1 : bytes;
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    maps_.emplace_back(p, n);
    return p;
  }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }

 private:
  std::vector<std::pair<void*, size_t>> maps_;
};

}  // namespace

std::unique_ptr<DeviceMemory> make_cpu_memory() {
  return std::make_unique<CpuMemory>();
}
std::unique_ptr<DeviceMemory> make_lazy_zero_memory() {
  return std::make_unique<LazyZeroMemory>();
}

}  // namespace sable::runner
