// Measures the two ceilings every GPU number in bench/NOTES.md is compared with: device-to-device
// copy bandwidth (bytes read + written) and the bf16 GEMM rate through our cuBLASLt path, plus the
// M=1..64 GEMMs of decode at Llama-3.1-8B shapes (bandwidth-bound: weight bytes / time).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/ops/cuda/gemm.h"
#include "sable/tensor.h"

namespace {

template <class F>
float time_ms(F&& f, int reps) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

__global__ void fill(uint16_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 13;
    p[i] = 0x3c00 + (x & 0x3ff) - 0x200;  // bf16 around ±0.01..1, never zero
  }
}

}  // namespace

int main() {
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount,
              prop.totalGlobalMem / 1073741824.0);
  const size_t bytes = size_t(2) << 30;
  void *src, *dst;
  cudaMalloc(&src, bytes);
  cudaMalloc(&dst, bytes);
  fill<<<4096, 256>>>(static_cast<uint16_t*>(src), bytes / 2, 1);
  const float copy_ms = time_ms([&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice); }, 10);
  const double bw = 2.0 * bytes / (copy_ms * 1e-3) / 1e9;
  std::printf("ceiling copy_bandwidth_GBps %.0f\n", bw);

  sable::ops::cuda::Gemm gemm;
  std::string err;
  const int64_t n = 8192;
  void *x, *w, *o;
  cudaMalloc(&x, n * n * 2);
  cudaMalloc(&w, n * n * 2);
  cudaMalloc(&o, n * n * 2);
  fill<<<4096, 256>>>(static_cast<uint16_t*>(x), n * n, 2);
  fill<<<4096, 256>>>(static_cast<uint16_t*>(w), n * n, 3);
  const float gemm_ms = time_ms([&] {
    gemm.run(x, n, SABLE_DTYPE_BF16, w, nullptr, o, SABLE_DTYPE_BF16, n, n, n, nullptr, &err);
  }, 10);
  std::printf("ceiling gemm_bf16_TFLOPs %.0f\n", 2.0 * n * n * n / (gemm_ms * 1e-3) / 1e12);

  // Decode-shaped GEMMs of Llama-3.1-8B (fused qkv, o, fused gate_up, down, lm_head).
  struct Shape { const char* name; int64_t nn, k; };
  const Shape shapes[] = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096},
                          {"down", 4096, 14336}, {"lm_head", 128256, 4096}};
  for (int64_t m : {1, 8, 64}) {
    double total_ms = 0, total_bytes = 0;
    for (const auto& s : shapes) {
      void *a, *bw_, *c;
      cudaMalloc(&a, m * s.k * 2);
      cudaMalloc(&bw_, s.nn * s.k * 2);
      cudaMalloc(&c, m * s.nn * 4);
      fill<<<1024, 256>>>(static_cast<uint16_t*>(a), m * s.k, 4);
      fill<<<4096, 256>>>(static_cast<uint16_t*>(bw_), s.nn * s.k, 5);
      const int32_t od = std::string(s.name) == "lm_head" ? SABLE_DTYPE_F32 : SABLE_DTYPE_BF16;
      const float ms = time_ms([&] {
        gemm.run(a, s.k, SABLE_DTYPE_BF16, bw_, nullptr, c, od, m, s.nn, s.k, nullptr, &err);
      }, 20);
      const double wbytes = double(s.nn) * s.k * 2;
      std::printf("gemm M=%-3ld %-8s N=%-6ld K=%-5ld %7.1f us  %6.0f GB/s\n", long(m), s.name,
                  long(s.nn), long(s.k), ms * 1e3, wbytes / (ms * 1e-3) / 1e9);
      if (std::string(s.name) != "lm_head") {
        total_ms += ms * 32;
        total_bytes += wbytes * 32;
      } else {
        total_ms += ms;
        total_bytes += wbytes;
      }
      cudaFree(a);
      cudaFree(bw_);
      cudaFree(c);
    }
    std::printf("decode_gemms_8B M=%ld: %.2f ms/step (%.0f GB/s) -> GEMM-only bound %.0f tok/s/seq\n",
                long(m), total_ms, total_bytes / (total_ms * 1e-3) / 1e9, 1000.0 / total_ms);
  }
  if (!err.empty()) std::printf("error: %s\n", err.c_str());
  return 0;
}
