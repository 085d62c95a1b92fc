// Small device helpers shared by Sable's CUDA kernels: dtype traits, 16-byte vector access,
// warp/block reductions. Included only from .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "sable/tensor.h"

namespace sable::ops::cuda {

template <class T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }

template <class T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half(v); }

// 16 bytes of T: 8 bf16/f16 or 4 f32.
template <class T>
struct alignas(16) Vec {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

// V elements at p as floats: one element (V 1), or one 16-byte load (V = Vec<T>::kN; p aligned).
template <class T, int V>
__device__ __forceinline__ void load_f32(const T* p, float (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = to_f32(*p);
  } else {
    static_assert(V == Vec<T>::kN, "vector loads are 16 bytes");
    const Vec<T> v = *reinterpret_cast<const Vec<T>*>(p);
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = to_f32(v.v[i]);
  }
}

// v[e] = bf16(v[e] + d[e]) for the vector's elements: a LoRA expand's fp32 sums d (16-byte
// aligned) added with lora_apply_delta's one rounding.
template <class T>
__device__ __forceinline__ void add_f32(Vec<T>& v, const float* d) {
  static_assert(Vec<T>::kN % 4 == 0, "the sums are read as float4s");
#pragma unroll
  for (int e = 0; e < Vec<T>::kN; e += 4) {
    const float4 dv = *reinterpret_cast<const float4*>(d + e);
    v.v[e] = from_f32<T>(to_f32(v.v[e]) + dv.x);
    v.v[e + 1] = from_f32<T>(to_f32(v.v[e + 1]) + dv.y);
    v.v[e + 2] = from_f32<T>(to_f32(v.v[e + 2]) + dv.z);
    v.v[e + 3] = from_f32<T>(to_f32(v.v[e + 3]) + dv.w);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; `scratch` holds 32 floats. Every thread gets the result.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

// Max over the block; `scratch` holds 32 floats. Every thread gets the result.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(v);
}

__host__ __device__ inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Multiprocessors of the current device (cached per process: one GPU per process), 132 when the
// runtime cannot say.
inline int64_t sm_count() {
  static const int64_t n = [] {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0)
      return int64_t{132};
    return int64_t{v};
  }();
  return n;
}

// Calls F with the C++ type of a float SableDType; returns false for other dtypes.
template <class F>
bool dispatch_float(int32_t dtype, F&& f) {
  switch (dtype) {
    case SABLE_DTYPE_F32: f(float{}); return true;
    case SABLE_DTYPE_BF16: f(__nv_bfloat16{}); return true;
    case SABLE_DTYPE_F16: f(__half{}); return true;
    default: return false;
  }
}

inline unsigned grid_for(int64_t n, int threads, int64_t cap = 65535LL * 32) {
  int64_t g = (n + threads - 1) / threads;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g > cap ? cap : g);
}

}  // namespace sable::ops::cuda
