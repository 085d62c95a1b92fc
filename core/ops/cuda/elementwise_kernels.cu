// Elementwise CUDA kernels: gated and plain activations, broadcast add/mul, scale, sigmoid, cast
// and strided copy. Grid-stride loops; the gated activation uses 16-byte vectors when aligned.
#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"
#include "sable/ops.h"

namespace sable::ops::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float apply_act(int act, float x) {
  switch (act) {
    case SABLE_ACT_SILU: return x / (1.0f + __expf(-x));
    case SABLE_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case SABLE_ACT_GELU_TANH: {
      const float c = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
    }
    case SABLE_ACT_TANH: return tanhf(x);
    default: return fmaxf(x, 0.0f);  // relu
  }
}

// PyTorch computes act(gate) in the storage dtype, then multiplies: round act(gate) first.
template <class T>
__global__ void act_mul_kernel(int act, const T* __restrict__ x, int64_t tokens, int64_t inter,
                               T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int64_t n = tokens * inter;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / inter, j = i - t * inter;
    const T* row = x + t * 2 * inter;
    const float g = to_f32(from_f32<T>(apply_act(act, to_f32(row[j]))));
    out[i] = from_f32<T>(g * to_f32(row[inter + j]));
  }
}

// kDelta: gate and up are first made bf16(gate + dg) and bf16(up + du), dg and du fp32 [tokens,
// inter] blocks of delta (a LoRA expand's sums, gate's then up's), and written back to x, as
// lora_apply_delta leaves them.
template <class T, bool kDelta>
__global__ void act_mul_vec_kernel(int act, const T* __restrict__ x, int64_t tokens, int64_t inter,
                                   T* __restrict__ out, const float* __restrict__ delta) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  using V = Vec<T>;
  constexpr int kN = V::kN;
  const int64_t nv_row = inter / kN, n = tokens * nv_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / nv_row, j = i - t * nv_row;
    const V* row = reinterpret_cast<const V*>(x + t * 2 * inter);
    V g = row[j], u = row[nv_row + j];
    if constexpr (kDelta) {
      add_f32(g, delta + i * kN);
      add_f32(u, delta + tokens * inter + i * kN);
      V* w = const_cast<V*>(row);
      w[j] = g;
      w[nv_row + j] = u;
    }
    V o;
#pragma unroll
    for (int e = 0; e < kN; ++e) {
      const float a = to_f32(from_f32<T>(apply_act(act, to_f32(g.v[e]))));
      o.v[e] = from_f32<T>(a * to_f32(u.v[e]));
    }
    reinterpret_cast<V*>(out)[i] = o;
  }
}

template <class T>
__global__ void activation_kernel(int act, const T* __restrict__ x, int64_t n, T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(apply_act(act, to_f32(x[i])));
}

template <class T>
__global__ void binary_kernel(int op, const T* __restrict__ a, const T* __restrict__ b,
                              int64_t b_rows, int64_t b_cols, int64_t rows, int64_t cols,
                              T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i - r * cols;
    const int64_t bi = (b_rows == 1 ? 0 : r) * b_cols + (b_cols == 1 ? 0 : c);
    const float x = to_f32(a[i]), y = to_f32(b[bi]);
    out[i] = from_f32<T>(op == 0 ? x + y : x * y);
  }
}

template <class T>
__global__ void scale_kernel(const T* __restrict__ x, float s, int64_t n, T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(to_f32(x[i]) * s);
}

template <class T>
__global__ void sigmoid_kernel(const T* __restrict__ x, int64_t n, T* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(1.0f / (1.0f + __expf(-to_f32(x[i]))));
}

template <class S, class D>
__global__ void cast_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<S, int32_t>) {
      dst[i] = from_f32<D>(static_cast<float>(src[i]));
    } else if constexpr (std::is_same_v<D, int32_t>) {
      dst[i] = static_cast<int32_t>(to_f32(src[i]));
    } else {
      dst[i] = from_f32<D>(to_f32(src[i]));
    }
  }
}

struct Strides4 {
  int64_t shape[4], src[4], dst[4];
};

template <class T>
__global__ void copy_kernel(const T* __restrict__ src, T* __restrict__ dst, Strides4 s, int64_t n) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rem = i, so = 0, d = 0;
#pragma unroll
    for (int k = 3; k >= 0; --k) {
      const int64_t idx = rem % s.shape[k];
      rem /= s.shape[k];
      so += idx * s.src[k];
      d += idx * s.dst[k];
    }
    dst[d] = src[so];
  }
}

template <class F>
bool dispatch_any(int32_t dtype, F&& f) {
  if (dtype == SABLE_DTYPE_I32 || dtype == SABLE_DTYPE_U32) {
    f(int32_t{});
    return true;
  }
  if (dtype == SABLE_DTYPE_I64) {
    f(int64_t{});
    return true;
  }
  if (dtype == SABLE_DTYPE_U8) {
    f(uint8_t{});
    return true;
  }
  return dispatch_float(dtype, f);
}

}  // namespace

bool act_mul(int32_t act, const void* x, int32_t dtype, int64_t tokens, int64_t inter, void* out,
             void* stream) {
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    if (inter % kN == 0 && aligned16(x) && aligned16(out)) {
      const int64_t n = tokens * inter / kN;
      err = sable::cuda::launch(act_mul_vec_kernel<T, false>, grid_for(n, kThreads), kThreads, 0,
                                as_stream(stream), act, static_cast<const T*>(x), tokens, inter,
                                static_cast<T*>(out), static_cast<const float*>(nullptr));
    } else {
      err = sable::cuda::launch(act_mul_kernel<T>, grid_for(tokens * inter, kThreads), kThreads, 0,
                                as_stream(stream), act, static_cast<const T*>(x),
                                tokens, inter, static_cast<T*>(out));
    }
  });
  return ok && err == cudaSuccess;
}

bool act_mul_delta(int32_t act, void* x, const float* delta, int32_t dtype, int64_t tokens,
                   int64_t inter, void* out, void* stream) {
  cudaError_t err = cudaErrorInvalidValue;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kN = Vec<T>::kN;
    if constexpr (kN % 4 == 0) {
      if (inter % kN != 0 || !aligned16(x) || !aligned16(out) || !aligned16(delta)) return;
      const int64_t n = tokens * inter / kN;
      err = sable::cuda::launch(act_mul_vec_kernel<T, true>, grid_for(n, kThreads), kThreads, 0,
                                as_stream(stream), act, static_cast<const T*>(x), tokens, inter,
                                static_cast<T*>(out), delta);
    }
  });
  return err == cudaSuccess;
}

bool activation(int32_t act, const void* x, int32_t dtype, int64_t n, void* out, void* stream) {
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(activation_kernel<T>, grid_for(n, kThreads), kThreads, 0,
                              as_stream(stream), act, static_cast<const T*>(x), n,
                              static_cast<T*>(out));
  });
  return ok && err == cudaSuccess;
}

bool binary(int32_t op, const void* a, const void* b, int64_t b_rows, int64_t b_cols,
            int32_t dtype, int64_t rows, int64_t cols, void* out, void* stream) {
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(binary_kernel<T>, grid_for(rows * cols, kThreads), kThreads, 0,
                              as_stream(stream), op, static_cast<const T*>(a),
                              static_cast<const T*>(b), b_rows, b_cols, rows, cols,
                              static_cast<T*>(out));
  });
  return ok && err == cudaSuccess;
}

bool scale(const void* x, float s, int32_t dtype, int64_t n, void* out, void* stream) {
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(scale_kernel<T>, grid_for(n, kThreads), kThreads, 0, as_stream(stream),
                              static_cast<const T*>(x), s, n, static_cast<T*>(out));
  });
  return ok && err == cudaSuccess;
}

bool sigmoid(const void* x, int32_t dtype, int64_t n, void* out, void* stream) {
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(sigmoid_kernel<T>, grid_for(n, kThreads), kThreads, 0,
                              as_stream(stream), static_cast<const T*>(x), n, static_cast<T*>(out));
  });
  return ok && err == cudaSuccess;
}

bool cast(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t n,
          void* stream) {
  bool ok = false;
  auto with_dst = [&](auto stag) {
    using S = decltype(stag);
    auto inner = [&](auto dtag) {
      using D = decltype(dtag);
      ok = sable::cuda::launch(cast_kernel<S, D>, grid_for(n, kThreads), kThreads, 0,
                               as_stream(stream), static_cast<const S*>(src), static_cast<D*>(dst),
                               n) == cudaSuccess;
    };
    if (dst_dtype == SABLE_DTYPE_I32) {
      if constexpr (!std::is_same_v<S, int32_t>) inner(int32_t{});
    } else {
      dispatch_float(dst_dtype, inner);
    }
  };
  if (src_dtype == SABLE_DTYPE_I32) {
    with_dst(int32_t{});
  } else {
    dispatch_float(src_dtype, with_dst);
  }
  return ok;
}

bool copy_strided(const void* src, const int64_t* src_strides, void* dst, const int64_t* dst_strides,
                  const int64_t* shape, int32_t ndim, int32_t dtype, void* stream) {
  if (ndim < 1 || ndim > 4) return false;
  Strides4 s;
  const int pad = 4 - ndim;
  int64_t n = 1;
  for (int k = 0; k < 4; ++k) {
    const bool real = k >= pad;
    s.shape[k] = real ? shape[k - pad] : 1;
    s.src[k] = real ? src_strides[k - pad] : 0;
    s.dst[k] = real ? dst_strides[k - pad] : 0;
    n *= s.shape[k];
  }
  if (n == 0) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_any(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(copy_kernel<T>, grid_for(n, kThreads), kThreads, 0, as_stream(stream),
                              static_cast<const T*>(src), static_cast<T*>(dst), s, n);
  });
  return ok && err == cudaSuccess;
}

}  // namespace sable::ops::cuda
