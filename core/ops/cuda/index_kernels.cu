// Index-driven CUDA kernels: embedding lookup (whole or one rank's vocabulary shard), row gather,
// argmax, rotary embedding and MoE routing.
#include <cfloat>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"
#include "sable/ops.h"

namespace sable::ops::cuda {
namespace {

constexpr int kThreads = 256;

// One block per output row; 16-byte copies when rows are aligned.
__global__ void copy_rows_kernel(const char* __restrict__ src, int64_t src_row_bytes,
                                 const int32_t* __restrict__ rows, int64_t limit,
                                 int64_t row_bytes, char* __restrict__ dst) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int64_t r = blockIdx.x;
  int64_t idx = rows[r];
  if (idx < 0 || idx >= limit) idx = 0;  // validated on the host where possible; never read OOB
  const char* s = src + idx * src_row_bytes;
  char* d = dst + r * row_bytes;
  if ((row_bytes & 15) == 0 && (src_row_bytes & 15) == 0 && aligned16(src) && aligned16(dst)) {
    for (int64_t i = threadIdx.x; i < row_bytes / 16; i += blockDim.x)
      reinterpret_cast<uint4*>(d)[i] = reinterpret_cast<const uint4*>(s)[i];
  } else {
    for (int64_t i = threadIdx.x; i < row_bytes; i += blockDim.x) d[i] = s[i];
  }
}

// One block per output row of a vocabulary shard: table row ids[r] - first when it is one of the
// `rows` this rank holds, else a zero row (another rank adds the real one in the all-reduce).
__global__ void shard_rows_kernel(const char* __restrict__ src, int64_t row_bytes,
                                  const int32_t* __restrict__ ids, int64_t first, int64_t rows,
                                  char* __restrict__ dst) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int64_t r = blockIdx.x;
  const int64_t idx = static_cast<int64_t>(ids[r]) - first;
  const bool held = idx >= 0 && idx < rows;
  const char* s = src + (held ? idx : 0) * row_bytes;
  char* d = dst + r * row_bytes;
  if ((row_bytes & 15) == 0 && aligned16(src) && aligned16(dst)) {
    const uint4 zero = make_uint4(0, 0, 0, 0);
    for (int64_t i = threadIdx.x; i < row_bytes / 16; i += blockDim.x)
      reinterpret_cast<uint4*>(d)[i] = held ? reinterpret_cast<const uint4*>(s)[i] : zero;
  } else {
    for (int64_t i = threadIdx.x; i < row_bytes; i += blockDim.x) d[i] = held ? s[i] : char{0};
  }
}

template <class T>
__global__ void argmax_kernel(const T* __restrict__ x, int64_t cols, int32_t* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  __shared__ float best_v[32];
  __shared__ int32_t best_i[32];
  const T* row = x + blockIdx.x * cols;
  float bv = -FLT_MAX;
  int32_t bi = 0x7fffffff;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float v = to_f32(row[i]);
    if (v > bv) {  // strided scan keeps the lowest index per thread on ties
      bv = v;
      bi = static_cast<int32_t>(i);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) {
      bv = ov;
      bi = oi;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    best_v[warp] = bv;
    best_i[warp] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < (blockDim.x + 31) / 32; ++w)
      if (best_v[w] > bv || (best_v[w] == bv && best_i[w] < bi)) {
        bv = best_v[w];
        bi = best_i[w];
      }
    out[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;
  }
}

// The rope kernels' grid-stride index i over (token, head, column pair): {token, head, pair}.
struct HeadPair {
  int64_t t;
  int32_t h, p;
};
__device__ __forceinline__ HeadPair head_pair(int64_t i, int32_t heads, int32_t pairs) {
  const int64_t th = i / pairs;
  return {th / heads, static_cast<int32_t>(th % heads), static_cast<int32_t>(i % pairs)};
}

template <class T>
__global__ void rope_kernel(T* __restrict__ q, int64_t q_stride, int32_t q_heads, T* __restrict__ k,
                            int64_t k_stride, int32_t k_heads, int32_t head_dim, int32_t rot_dim,
                            const int32_t* __restrict__ positions, int64_t tokens,
                            const float* __restrict__ cos_sin, int32_t style) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int32_t half = rot_dim / 2;
  const int32_t heads = q_heads + k_heads;
  const int64_t n = tokens * heads * half;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const auto [t, h, p] = head_pair(i, heads, half);
    T* base = h < q_heads ? q + t * q_stride + int64_t(h) * head_dim
                          : k + t * k_stride + int64_t(h - q_heads) * head_dim;
    const float* cs = cos_sin + int64_t(positions[t]) * rot_dim;
    const float c = cs[p], s = cs[half + p];
    const int32_t i0 = style == SABLE_ROPE_NEOX ? p : 2 * p;
    const int32_t i1 = style == SABLE_ROPE_NEOX ? p + half : 2 * p + 1;
    const float x0 = to_f32(base[i0]), x1 = to_f32(base[i1]);
    base[i0] = from_f32<T>(x0 * c - x1 * s);
    base[i1] = from_f32<T>(x1 * c + x0 * s);
  }
}

// rope over fused [q | k | v] rows plus q|k|v's pending LoRA delta (lora_pending.h): thread per
// (token, head of q, k or v, column pair); each column made bf16(x + delta) first, as
// lora_apply_delta leaves it, and q's and k's rotary pairs then rotated as rope_kernel does.
template <class T>
__global__ void rope_qkv_delta_kernel(T* __restrict__ qkv, int64_t ld, int32_t q_heads,
                                      int32_t kv_heads, const float* __restrict__ delta,
                                      int32_t head_dim, int32_t rot_dim,
                                      const int32_t* __restrict__ positions, int64_t tokens,
                                      const float* __restrict__ cos_sin, int32_t style) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int32_t pairs = head_dim / 2, half = rot_dim / 2;
  const int32_t heads = q_heads + 2 * kv_heads;
  const int64_t qd = int64_t(q_heads) * head_dim, kd = int64_t(kv_heads) * head_dim;
  const int64_t n = tokens * heads * pairs;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const auto [t, h, p] = head_pair(i, heads, pairs);
    T* base = qkv + t * ld + int64_t(h) * head_dim;
    // The delta is [T, qd] for q, then [T, kd] for k and for v (LoraLaunch::delta_offset).
    const float* d;
    if (h < q_heads)
      d = delta + t * qd + int64_t(h) * head_dim;
    else if (h < q_heads + kv_heads)
      d = delta + tokens * qd + t * kd + int64_t(h - q_heads) * head_dim;
    else
      d = delta + tokens * (qd + kd) + t * kd + int64_t(h - q_heads - kv_heads) * head_dim;
    const bool rotated = h < q_heads + kv_heads && p < half;
    int32_t i0, i1;
    if (p < half) {
      i0 = style == SABLE_ROPE_NEOX ? p : 2 * p;
      i1 = style == SABLE_ROPE_NEOX ? p + half : 2 * p + 1;
    } else {  // the columns past the rotary dims, in pairs
      i0 = rot_dim + 2 * (p - half);
      i1 = i0 + 1;
    }
    const T y0 = from_f32<T>(to_f32(base[i0]) + d[i0]), y1 = from_f32<T>(to_f32(base[i1]) + d[i1]);
    if (rotated) {
      const float* cs = cos_sin + int64_t(positions[t]) * rot_dim;
      const float c = cs[p], s = cs[half + p];
      const float x0 = to_f32(y0), x1 = to_f32(y1);
      base[i0] = from_f32<T>(x0 * c - x1 * s);
      base[i1] = from_f32<T>(x1 * c + x0 * s);
    } else {
      base[i0] = y0;
      base[i1] = y1;
    }
  }
}

// One warp per token; experts <= 1024, top_k <= 32. Selection by repeated arg-max over scores.
template <class T>
__global__ void moe_route_kernel(const T* __restrict__ logits, int64_t tokens, int32_t experts,
                                 int32_t top_k, int32_t scoring, bool renormalize,
                                 float* __restrict__ weights, int32_t* __restrict__ ids) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  extern __shared__ float smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (t >= tokens) return;
  float* score = smem + warp * experts;
  const T* row = logits + t * experts;
  float mx = -FLT_MAX;
  for (int e = lane; e < experts; e += 32) mx = fmaxf(mx, to_f32(row[e]));
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int e = lane; e < experts; e += 32) {
    const float v = to_f32(row[e]);
    const float s = scoring == SABLE_MOE_SIGMOID ? 1.0f / (1.0f + __expf(-v)) : __expf(v - mx);
    score[e] = s;
    sum += s;
  }
  sum = warp_sum(sum);
  __syncwarp();
  float picked_sum = 0.0f;
  for (int j = 0; j < top_k; ++j) {
    float bv = -FLT_MAX;
    int bi = experts;
    for (int e = lane; e < experts; e += 32)
      if (score[e] > bv) {
        bv = score[e];
        bi = e;
      }
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) {
        bv = ov;
        bi = oi;
      }
    }
    const float w = scoring == SABLE_MOE_SIGMOID ? bv : bv / sum;
    if (lane == 0) {
      ids[t * top_k + j] = bi;
      weights[t * top_k + j] = w;
      score[bi] = -FLT_MAX;
    }
    picked_sum += w;
    __syncwarp();
  }
  if (renormalize && lane < top_k) weights[t * top_k + lane] /= picked_sum;
}

}  // namespace

bool embedding(const void* table, int32_t dtype, const int32_t* ids, int64_t tokens, int64_t hidden,
               int64_t vocab, void* out, void* stream) {
  const int64_t row_bytes = hidden * int64_t(sable_dtype_size(dtype));
  if (row_bytes == 0) return false;
  if (tokens == 0) return true;
  return sable::cuda::launch(copy_rows_kernel, static_cast<unsigned>(tokens), 128, 0,
                             as_stream(stream), static_cast<const char*>(table), row_bytes, ids,
                             vocab, row_bytes, static_cast<char*>(out)) == cudaSuccess;
}

bool embedding_shard(const void* table, int32_t dtype, const int32_t* ids, int64_t tokens,
                     int64_t hidden, int64_t first_id, int64_t rows, void* out, void* stream) {
  const int64_t row_bytes = hidden * int64_t(sable_dtype_size(dtype));
  if (row_bytes == 0) return false;
  if (tokens == 0) return true;
  return sable::cuda::launch(shard_rows_kernel, static_cast<unsigned>(tokens), 128, 0,
                             as_stream(stream), static_cast<const char*>(table), row_bytes, ids,
                             first_id, rows, static_cast<char*>(out)) == cudaSuccess;
}

bool gather_rows(const void* x, int32_t dtype, int64_t x_stride, const int32_t* rows, int64_t n,
                 int64_t hidden, void* out, void* stream) {
  const int64_t es = int64_t(sable_dtype_size(dtype));
  if (es == 0) return false;
  if (n == 0) return true;
  // `limit` is unknown here (rows come from the runner, which validates them).
  return sable::cuda::launch(copy_rows_kernel, static_cast<unsigned>(n), 128, 0, as_stream(stream),
                             static_cast<const char*>(x), x_stride * es, rows, int64_t{INT64_MAX},
                             hidden * es, static_cast<char*>(out)) == cudaSuccess;
}

bool argmax(const void* x, int32_t dtype, int64_t rows, int64_t cols, int32_t* out, void* stream) {
  if (rows == 0) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(argmax_kernel<T>, static_cast<unsigned>(rows), 1024, 0,
                              as_stream(stream), static_cast<const T*>(x), cols, out);
  });
  return ok && err == cudaSuccess;
}

bool rope(void* q, int64_t q_stride, int32_t q_heads, void* k, int64_t k_stride, int32_t k_heads,
          int32_t dtype, int32_t head_dim, int32_t rot_dim, const int32_t* positions,
          int64_t tokens, const float* cos_sin, int32_t style, void* stream) {
  if (!q) q_heads = 0;
  if (!k) k_heads = 0;
  const int64_t n = tokens * (q_heads + k_heads) * (rot_dim / 2);
  if (n == 0) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(rope_kernel<T>, grid_for(n, kThreads), kThreads, 0, as_stream(stream),
                              static_cast<T*>(q), q_stride, q_heads, static_cast<T*>(k), k_stride,
                              k_heads, head_dim, rot_dim, positions, tokens, cos_sin, style);
  });
  return ok && err == cudaSuccess;
}

bool rope_qkv_delta(void* qkv, int64_t ld, int32_t q_heads, int32_t kv_heads, const float* delta,
                    int32_t dtype, int32_t head_dim, int32_t rot_dim, const int32_t* positions,
                    int64_t tokens, const float* cos_sin, int32_t style, void* stream) {
  if (head_dim % 2 != 0 || rot_dim % 2 != 0 || rot_dim > head_dim) return false;
  const int64_t n = tokens * (q_heads + 2 * kv_heads) * (head_dim / 2);
  if (n == 0) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(rope_qkv_delta_kernel<T>, grid_for(n, kThreads), kThreads, 0,
                              as_stream(stream), static_cast<T*>(qkv), ld, q_heads, kv_heads, delta,
                              head_dim, rot_dim, positions, tokens, cos_sin, style);
  });
  return ok && err == cudaSuccess;
}

bool moe_route(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int32_t top_k,
               int32_t scoring, bool renormalize, float* weights, int32_t* ids, void* stream) {
  if (experts > 1024 || top_k > 32 || top_k > experts) return false;
  if (tokens == 0) return true;
  constexpr int kWarps = 4;
  const size_t smem = sizeof(float) * experts * kWarps;
  const unsigned blocks = static_cast<unsigned>((tokens + kWarps - 1) / kWarps);
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(moe_route_kernel<T>, blocks, kWarps * 32, smem, as_stream(stream),
                              static_cast<const T*>(logits), tokens, experts, top_k, scoring,
                              renormalize, weights, ids);
  });
  return ok && err == cudaSuccess;
}

}  // namespace sable::ops::cuda
