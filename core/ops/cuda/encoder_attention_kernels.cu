// Encoder attention on CUDA (ops attention_bidirectional): every token attends to all tokens of its
// own sequence, no KV cache. One block per (query token, query head): the block finds its sequence
// from the positions (the run of 0, 1, 2, ... around it), then walks the keys in tiles of
// blockDim with an online softmax (fp32), accumulating one output dim per thread. Plain and
// capturable; the fallback of the tensor-core kernel (encoder_flash_attention.cu) for other dtypes
// and head dims. The paged prefill kernel stays the fast path for causal attention.
#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

constexpr int kThreads = 256;  // also the largest head dim

template <class T>
__global__ void bidirectional_kernel(EncoderAttentionArgs a) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  __shared__ float s_q[kThreads];
  __shared__ float s_p[kThreads];
  __shared__ float s_red[32];
  __shared__ int64_t s_end;
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y;
  const int g = h / a.group;
  const int64_t begin = t - a.positions[t];
  if (threadIdx.x == 0) {
    int64_t end = t + 1;
    while (end < a.tokens && a.positions[end] == end - begin) ++end;
    s_end = end;
  }
  const T* q = static_cast<const T*>(a.q) + t * a.q_stride + h * a.q_head_stride;
  if (threadIdx.x < a.head_dim) s_q[threadIdx.x] = to_f32(q[threadIdx.x]);
  __syncthreads();
  const int64_t end = s_end;
  const T* k = static_cast<const T*>(a.k) + g * a.k_head_stride;
  const T* v = static_cast<const T*>(a.v) + g * a.v_head_stride;
  float m = -INFINITY, l = 0.0f, acc = 0.0f;
  for (int64_t tile = begin; tile < end; tile += blockDim.x) {
    const int64_t j = tile + threadIdx.x;
    float score = -INFINITY;
    if (j < end) {
      const T* kr = k + j * a.k_stride;
      float dot = 0.0f;
      for (int d = 0; d < a.head_dim; ++d) dot += s_q[d] * to_f32(kr[d]);
      score = dot * a.scale;
    }
    const float new_m = fmaxf(m, block_max(score, s_red));
    const float p = j < end ? __expf(score - new_m) : 0.0f;
    const float corr = __expf(m - new_m);  // 0 on the first tile (m = -inf)
    l = l * corr + block_sum(p, s_red);
    acc *= corr;
    m = new_m;
    s_p[threadIdx.x] = p;
    __syncthreads();
    if (threadIdx.x < a.head_dim) {
      const int64_t n = min(static_cast<int64_t>(blockDim.x), end - tile);
      for (int64_t jj = 0; jj < n; ++jj)
        acc += s_p[jj] * to_f32(v[(tile + jj) * a.v_stride + threadIdx.x]);
    }
    __syncthreads();
  }
  if (threadIdx.x < a.head_dim) {
    T* o = static_cast<T*>(a.out) + t * a.out_stride + h * a.out_head_stride;
    o[threadIdx.x] = from_f32<T>(acc / l);
  }
}

}  // namespace

bool encoder_attention(const EncoderAttentionArgs& a, void* stream) {
  if (a.head_dim < 1 || a.head_dim > kThreads || a.group < 1 || a.tokens < 1 || a.q_heads < 1 ||
      a.q_heads > 65535)
    return false;
  bool launched = false;  // the tensor-core kernel (encoder_flash_attention.cu) where it fits
  if (!encoder_flash_attention(a, stream, &launched)) return false;
  if (launched) return true;
  cudaError_t err = cudaSuccess;
  const bool ok = dispatch_float(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    err = sable::cuda::launch(bidirectional_kernel<T>,
                              dim3(static_cast<unsigned>(a.tokens), static_cast<unsigned>(a.q_heads)),
                              dim3(kThreads), 0, as_stream(stream), a);
  });
  return ok && err == cudaSuccess;
}

}  // namespace sable::ops::cuda
