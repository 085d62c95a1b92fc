// RMSNorm and LayerNorm with a fused residual add: one block per row, fp32 statistics.
//
// With a residual, the sum x + residual is rounded to the storage dtype first (as PyTorch does for
// bf16 models: `hidden = residual + hidden` is a bf16 add), written back to `residual`, then
// normalised. The row is read twice (the second read hits L1/L2 for the widths of LLMs).
#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

constexpr int kThreads = 256;

// Row r of x starts at (r / inner) * x_stride + (r % inner) * inner_stride: plain rows have
// inner = 1; per-head views of a fused projection [T, heads, D] have inner = heads.
__device__ __forceinline__ int64_t row_offset(int64_t r, int64_t x_stride, int64_t inner,
                                              int64_t inner_stride) {
  return (r / inner) * x_stride + (r % inner) * inner_stride;
}

template <class T>
__global__ void rms_norm_kernel(const T* __restrict__ x, int64_t x_stride, int64_t inner,
                                int64_t inner_stride, T* __restrict__ residual,
                                const T* __restrict__ w, int64_t hidden, float eps, float offset,
                                T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row_offset(row, x_stride, inner, inner_stride);
  T* rr = residual ? residual + row * hidden : nullptr;
  T* orow = out + row * hidden;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = to_f32(xr[i]);
    if (rr) {
      const T sum = from_f32<T>(v + to_f32(rr[i]));
      rr[i] = sum;
      v = to_f32(sum);
    }
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(hidden) + eps);
  const T* src = rr ? rr : xr;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    // HF: weight * normed.to(dtype): round the normalised value first, then multiply.
    const float n = to_f32(from_f32<T>(to_f32(src[i]) * inv));
    orow[i] = from_f32<T>(n * (to_f32(w[i]) + offset));
  }
}

// Vectorised variant: hidden % 8 == 0 and 16-byte aligned rows (bf16/f16). kDelta: x's rows are
// first made bf16(x + delta) (fp32 delta [rows, hidden], a LoRA expand's sums) and written back,
// as lora_apply_delta leaves them (rows of x are then plain: inner 1).
template <class T, bool kDelta>
__global__ void rms_norm_vec_kernel(const T* __restrict__ x, int64_t x_stride, int64_t inner,
                                    int64_t inner_stride, T* __restrict__ residual,
                                    const T* __restrict__ w, int64_t hidden, float eps,
                                    float offset, T* __restrict__ out,
                                    const float* __restrict__ delta) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  using V = Vec<T>;
  constexpr int kN = V::kN;
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const V* xr = reinterpret_cast<const V*>(x + row_offset(row, x_stride, inner, inner_stride));
  V* rr = residual ? reinterpret_cast<V*>(residual + row * hidden) : nullptr;
  V* orow = reinterpret_cast<V*>(out + row * hidden);
  const V* wr = reinterpret_cast<const V*>(w);
  const int64_t nv = hidden / kN;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) {
    V a = xr[i];
    if constexpr (kDelta) {
      add_f32(a, delta + row * hidden + i * kN);
      const_cast<V*>(xr)[i] = a;
    }
    if (rr) {
      V b = rr[i];
#pragma unroll
      for (int j = 0; j < kN; ++j) a.v[j] = from_f32<T>(to_f32(a.v[j]) + to_f32(b.v[j]));
      rr[i] = a;
    }
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      const float f = to_f32(a.v[j]);
      ss += f * f;
    }
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / static_cast<float>(hidden) + eps);
  const V* src = rr ? rr : xr;
  for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) {
    const V a = src[i];
    const V ww = wr[i];
    V o;
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      const float n = to_f32(from_f32<T>(to_f32(a.v[j]) * inv));
      o.v[j] = from_f32<T>(n * (to_f32(ww.v[j]) + offset));
    }
    orow[i] = o;
  }
}

template <class T>
__global__ void layer_norm_kernel(const T* __restrict__ x, int64_t x_stride,
                                  T* __restrict__ residual, const T* __restrict__ w,
                                  const T* __restrict__ b, int64_t hidden, float eps,
                                  T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * x_stride;
  T* rr = residual ? residual + row * hidden : nullptr;
  T* orow = out + row * hidden;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float v = to_f32(xr[i]);
    if (rr) {
      const T sum = from_f32<T>(v + to_f32(rr[i]));
      rr[i] = sum;
      v = to_f32(sum);
    }
    s += v;
  }
  const float mean = block_sum(s, scratch) / static_cast<float>(hidden);
  const T* src = rr ? rr : xr;
  float var = 0.0f;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float d = to_f32(src[i]) - mean;
    var += d * d;
  }
  const float inv = rsqrtf(block_sum(var, scratch) / static_cast<float>(hidden) + eps);
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) {
    float n = (to_f32(src[i]) - mean) * inv;
    if (w) n *= to_f32(w[i]);
    if (b) n += to_f32(b[i]);
    orow[i] = from_f32<T>(n);
  }
}

}  // namespace

bool rms_norm(const void* x, int64_t x_stride, int64_t inner, int64_t inner_stride, void* residual,
              const void* weight, int32_t dtype, int64_t rows, int64_t hidden, float eps,
              float weight_offset, void* out, void* stream) {
  if (rows == 0) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const bool vec = sizeof(T) == 2 && hidden % 8 == 0 && x_stride % 8 == 0 &&
                     inner_stride % 8 == 0 && aligned16(x) &&
                     aligned16(out) && aligned16(weight) && (!residual || aligned16(residual));
    if (vec) {
      err = sable::cuda::launch(rms_norm_vec_kernel<T, false>, static_cast<unsigned>(rows),
                                kThreads, 0, as_stream(stream), static_cast<const T*>(x), x_stride,
                                inner, inner_stride, static_cast<T*>(residual),
                                static_cast<const T*>(weight), hidden, eps, weight_offset,
                                static_cast<T*>(out), static_cast<const float*>(nullptr));
    } else {
      const int threads = hidden < kThreads ? 32 * ((hidden + 31) / 32) : kThreads;
      err = sable::cuda::launch(rms_norm_kernel<T>, static_cast<unsigned>(rows),
                                static_cast<unsigned>(threads), 0, as_stream(stream),
                                static_cast<const T*>(x), x_stride, inner, inner_stride,
                                static_cast<T*>(residual), static_cast<const T*>(weight), hidden,
                                eps, weight_offset, static_cast<T*>(out));
    }
  });
  return ok && err == cudaSuccess;
}

bool rms_norm_delta(void* x, const float* delta, void* residual, const void* weight, int32_t dtype,
                    int64_t rows, int64_t hidden, float eps, float weight_offset, void* out,
                    void* stream) {
  if (rows == 0) return true;
  cudaError_t err = cudaErrorInvalidValue;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (sizeof(T) == 2) {
      if (hidden % 8 != 0 || !aligned16(x) || !aligned16(out) || !aligned16(weight) ||
          !aligned16(delta) || (residual && !aligned16(residual)))
        return;
      err = sable::cuda::launch(
          rms_norm_vec_kernel<T, true>, static_cast<unsigned>(rows), kThreads, 0, as_stream(stream),
          static_cast<const T*>(x), hidden, int64_t{1}, int64_t{0}, static_cast<T*>(residual),
          static_cast<const T*>(weight), hidden, eps, weight_offset, static_cast<T*>(out), delta);
    }
  });
  return err == cudaSuccess;
}

bool layer_norm(const void* x, int64_t x_stride, void* residual, const void* weight,
                const void* bias, int32_t dtype, int64_t rows, int64_t hidden, float eps, void* out,
                void* stream) {
  if (rows == 0) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(layer_norm_kernel<T>, static_cast<unsigned>(rows), kThreads, 0,
                              as_stream(stream), static_cast<const T*>(x), x_stride,
                              static_cast<T*>(residual), static_cast<const T*>(weight),
                              static_cast<const T*>(bias), hidden, eps, static_cast<T*>(out));
  });
  return ok && err == cudaSuccess;
}

}  // namespace sable::ops::cuda
