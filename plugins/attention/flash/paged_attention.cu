// Kernels of paged_attention.cuh. Head dims up to 256 (lane holds kE = ceil(D/32) elements).
#include <cfloat>

#include "paged_attention.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::attention::flash {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void append_kv_kernel(AppendParams p) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int64_t n = int64_t(p.num_tokens) * p.kv_heads * p.head_dim;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t d = static_cast<int32_t>(i % p.head_dim);
    const int64_t th = i / p.head_dim;
    const int32_t h = static_cast<int32_t>(th % p.kv_heads);
    const int64_t t = th / p.kv_heads;
    const int32_t slot = p.slot[t];
    if (slot < 0) continue;
    const int64_t dst = (int64_t(slot) * p.kv_heads + h) * p.head_dim + d;
    p.k_cache[dst] = p.k[t * p.k_stride + int64_t(h) * p.head_dim + d];
    p.v_cache[dst] = p.v[t * p.v_stride + int64_t(h) * p.head_dim + d];
  }
}

// Loads kE consecutive bf16 of a row at element offset `off` (masked beyond D).
template <int kE>
__device__ __forceinline__ void load_row(const __nv_bfloat16* row, int off, int d, float* dst) {
  if (kE == 4 && d % 4 == 0 && off + 4 <= d) {
    const uint2 raw = *reinterpret_cast<const uint2*>(row + off);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
    const float2 a = __bfloat1622float2(h[0]), b = __bfloat1622float2(h[1]);
    dst[0] = a.x; dst[1] = a.y; dst[2] = b.x; dst[3] = b.y;
    return;
  }
  if (kE == 8 && d % 8 == 0 && off + 8 <= d) {
    const uint4 raw = *reinterpret_cast<const uint4*>(row + off);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      dst[2 * j] = f.x;
      dst[2 * j + 1] = f.y;
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < kE; ++e) dst[e] = off + e < d ? __bfloat162float(row[off + e]) : 0.0f;
}

template <int kE>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(AttentionParams p) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int t = blockIdx.x;
  const int kvh = blockIdx.y / p.group_chunks;
  const int g0 = (blockIdx.y % p.group_chunks) * kMaxGroup;
  const int ng = min(kMaxGroup, p.group - g0);
  const int split = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int D = p.head_dim;
  const int off = lane * kE;

  const int begin_all = p.meta.begin[t], end_all = p.meta.end[t];
  const int chunk = *p.meta.chunk;
  const int begin = begin_all + split * chunk;
  const int end = min(end_all, begin + chunk);

  __shared__ float s_m[kWarps][kMaxGroup], s_l[kWarps][kMaxGroup];
  __shared__ float s_acc[kWarps][kMaxGroup][kE * 32];

  float q[kMaxGroup][kE], acc[kMaxGroup][kE], m[kMaxGroup], l[kMaxGroup];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -FLT_MAX;
    l[g] = 0.0f;
#pragma unroll
    for (int e = 0; e < kE; ++e) acc[g][e] = 0.0f;
    if (g < ng) {
      const int qh = kvh * p.group + g0 + g;
      load_row<kE>(p.q + int64_t(t) * p.q_stride + int64_t(qh) * D, off, D, q[g]);
#pragma unroll
      for (int e = 0; e < kE; ++e) q[g][e] *= p.scale_log2;
    } else {
#pragma unroll
      for (int e = 0; e < kE; ++e) q[g][e] = 0.0f;
    }
  }

  if (begin < end) {
    const int seq = p.meta.seq[t];
    const int32_t* pages = p.meta.kv_indices + p.meta.kv_indptr[seq];
    const int64_t row_stride = int64_t(p.kv_heads) * D;
    auto row_base = [&](int pos) {
      const int32_t page = pages[pos / p.page_size];
      return (int64_t(page) * p.page_size + pos % p.page_size) * row_stride + int64_t(kvh) * D;
    };
    // One position's contribution to every head of the group (online softmax, log2 domain).
    auto consume = [&](const float* k, const float* v) {
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= ng) break;
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < kE; ++e) s += q[g][e] * k[e];
        s = warp_sum(s);
        const float m_new = fmaxf(m[g], s);
        const float corr = exp2f(m[g] - m_new);
        const float w = exp2f(s - m_new);
        l[g] = l[g] * corr + w;
#pragma unroll
        for (int e = 0; e < kE; ++e) acc[g][e] = acc[g][e] * corr + w * v[e];
        m[g] = m_new;
      }
    };
    // Long contexts are latency-bound per warp: issue kUnroll positions' loads before using any.
    constexpr int kUnroll = 4;
    int pos = begin + warp;
    for (; pos + (kUnroll - 1) * kWarps < end; pos += kUnroll * kWarps) {
      float k[kUnroll][kE], v[kUnroll][kE];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t base = row_base(pos + u * kWarps);
        load_row<kE>(p.k_cache + base, off, D, k[u]);
        load_row<kE>(p.v_cache + base, off, D, v[u]);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) consume(k[u], v[u]);
    }
    for (; pos < end; pos += kWarps) {
      const int64_t base = row_base(pos);
      float k[kE], v[kE];
      load_row<kE>(p.k_cache + base, off, D, k);
      load_row<kE>(p.v_cache + base, off, D, v);
      consume(k, v);
    }
  }

  // Combine the warps of the block.
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (lane == 0) {
      s_m[warp][g] = m[g];
      s_l[warp][g] = l[g];
    }
#pragma unroll
    for (int e = 0; e < kE; ++e) s_acc[warp][g][off + e] = acc[g][e];
  }
  __syncthreads();
  // Thread i handles (g, d) pairs.
  for (int i = threadIdx.x; i < ng * D; i += blockDim.x) {
    const int g = i / D, d = i % D;
    float mx = -FLT_MAX;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, s_m[w][g]);
    float sum = 0.0f, a = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float c = s_m[w][g] == -FLT_MAX ? 0.0f : exp2f(s_m[w][g] - mx);
      sum += s_l[w][g] * c;
      a += s_acc[w][g][d] * c;
    }
    const int qh = kvh * p.group + g0 + g;
    if (p.splits == 1) {
      p.out[(int64_t(t) * p.q_heads + qh) * D + d] = __float2bfloat16(sum > 0.0f ? a / sum : 0.0f);
    } else {
      const int64_t idx = (int64_t(t) * p.q_heads + qh) * p.splits + split;
      p.part_acc[idx * D + d] = a;
      if (d == 0) {
        p.part_ml[idx * 2] = mx;
        p.part_ml[idx * 2 + 1] = sum;
      }
    }
  }
}

// One block per (token, q head); threads over D.
__global__ void merge_kernel(AttentionParams p) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int t = blockIdx.x, qh = blockIdx.y, D = p.head_dim;
  const int64_t base = (int64_t(t) * p.q_heads + qh) * p.splits;
  float mx = -FLT_MAX;
  for (int s = 0; s < p.splits; ++s)
    if (p.part_ml[(base + s) * 2 + 1] > 0.0f) mx = fmaxf(mx, p.part_ml[(base + s) * 2]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float sum = 0.0f, a = 0.0f;
    for (int s = 0; s < p.splits; ++s) {
      const float l = p.part_ml[(base + s) * 2 + 1];
      if (l <= 0.0f) continue;
      const float c = exp2f(p.part_ml[(base + s) * 2] - mx);
      sum += l * c;
      a += p.part_acc[(base + s) * D + d] * c;
    }
    p.out[(int64_t(t) * p.q_heads + qh) * D + d] = __float2bfloat16(sum > 0.0f ? a / sum : 0.0f);
  }
}

}  // namespace

bool launch_append_kv(const AppendParams& p, void* stream) {
  const int64_t n = int64_t(p.num_tokens) * p.kv_heads * p.head_dim;
  if (n == 0) return true;
  int64_t blocks = (n + 255) / 256;
  if (blocks > 65535 * 16) blocks = 65535 * 16;
  return sable::cuda::launch(append_kv_kernel, dim3(static_cast<unsigned>(blocks)), dim3(256), 0,
                             static_cast<cudaStream_t>(stream), p) == cudaSuccess;
}

bool launch_attention(const AttentionParams& p, void* stream) {
  if (p.num_tokens == 0) return true;
  const dim3 grid(p.num_tokens, p.kv_heads * p.group_chunks, p.splits);
  auto s = static_cast<cudaStream_t>(stream);
  const int e = (p.head_dim + 31) / 32;
  if (e <= 1) {
    sable::cuda::launch(attention_kernel<1>, grid, dim3(kWarps * 32), 0, s, p);
  } else if (e <= 2) {
    sable::cuda::launch(attention_kernel<2>, grid, dim3(kWarps * 32), 0, s, p);
  } else if (e <= 4) {
    sable::cuda::launch(attention_kernel<4>, grid, dim3(kWarps * 32), 0, s, p);
  } else if (e <= 8) {
    sable::cuda::launch(attention_kernel<8>, grid, dim3(kWarps * 32), 0, s, p);
  } else {
    return false;
  }
  if (p.splits > 1) sable::cuda::launch(merge_kernel, dim3(p.num_tokens, p.q_heads), dim3(128), 0, s, p);
  return true;
}

}  // namespace sable::attention::flash
