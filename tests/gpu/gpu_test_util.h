// Shared helpers of the GPU suites: skip without a device, bf16 conversion, device buffers, and a
// minimal host for driving plugins directly.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "sable/cpp/tensor.h"
#include "sable/sable.h"

namespace sable::gputest {

inline bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SABLE_REQUIRE_GPU() \
  if (!::sable::gputest::have_gpu()) GTEST_SKIP() << "no CUDA device"

// Runs body on a thread of its own with the environment variable `name` set to `value`, then puts
// the variable back as it was: the switches read once per thread (SABLE_LORA_EXPAND,
// SABLE_LORA_ZERO_FILL, SABLE_LORA_QKV_ROPE, SABLE_GEMM_TUNE), so calls nest
// to set several.
inline void with_env(const char* name, const char* value, const std::function<void()>& body) {
  const char* old = std::getenv(name);
  const std::string saved = old != nullptr ? old : "";
  setenv(name, value, 1);
  std::thread(body).join();
  if (old != nullptr)
    setenv(name, saved.c_str(), 1);
  else
    unsetenv(name);
}

inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float from_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A device allocation with RAII.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes) EXPECT_EQ(cudaMalloc(&p_, bytes), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  void* get() const { return p_; }
  template <class T>
  void upload(const std::vector<T>& v) {
    ASSERT_LE(v.size() * sizeof(T), bytes_);
    ASSERT_EQ(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  template <class T>
  std::vector<T> download(size_t n) const {
    std::vector<T> v(n);
    EXPECT_EQ(cudaMemcpy(v.data(), p_, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// Host floats into a device copy in `dtype` (F32 as they are, otherwise rounded to bf16), and
// n of them back as floats.
inline void upload_floats(DeviceBuffer& dev, const std::vector<float>& host, int32_t dtype) {
  if (dtype == SABLE_DTYPE_F32) return dev.upload(host);
  std::vector<uint16_t> h(host.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = to_bf16(host[i]);
  dev.upload(h);
}
inline std::vector<float> download_floats(const DeviceBuffer& dev, size_t n, int32_t dtype) {
  if (dtype == SABLE_DTYPE_F32) return dev.download<float>(n);
  const std::vector<uint16_t> h = dev.download<uint16_t>(n);
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = from_bf16(h[i]);
  return f;
}

inline SableTensor cuda_tensor(void* data, int32_t dtype, std::initializer_list<int64_t> shape) {
  return cpp::make_tensor(data, dtype, shape, SABLE_DEVICE_CUDA);
}

// Relative L2 error ||a - b|| / ||b||.
inline double rel_l2(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// A host for plugins under test: records the last error.
struct TestHost {
  static inline std::string last_error;
  static void log(SableHostHandle*, int32_t, const char*) {}
  static void set_error(SableHostHandle*, const char* m) { last_error = m ? m : ""; }
  SableHostApi api{};
  explicit TestHost(const SableOps* ops) {
    api.struct_size = sizeof(SableHostApi);
    api.abi_major = SABLE_ABI_MAJOR;
    api.abi_minor = SABLE_ABI_MINOR;
    api.log = &log;
    api.set_error = &set_error;
    api.ops = ops;
    api.device_type = SABLE_DEVICE_CUDA;
    api.compute_dtype = SABLE_DTYPE_BF16;
    api.tp_size = 1;
  }
};

}  // namespace sable::gputest
