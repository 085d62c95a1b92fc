// gemm_fused (sable/ops.h) for decode-sized batches: one kernel that reads the weights once and
// does the work around the projection in its prologue and epilogue, instead of a norm kernel
// before it and rope / act·mul / residual-add kernels after it.
//
// Shapes: x [M, K] bf16 (M <= 8), w [N, K] bf16, out [M, N] (or [M, N/2] gated) bf16.
// Each warp computes two output rows (a "task"), streaming both weight rows with 16-byte loads,
// several in flight per lane, with all M rows of x applied to each load. The two rows are chosen
// so that the epilogue has what it needs in registers:
//   - rope: the rotated pair of a head (neox: j and j + rot/2; interleaved: 2j and 2j + 1), and
//     two neighbouring unrotated columns otherwise;
//   - gated: gate row j and up row j + N/2, written as act(gate) * up to column j;
//   - plain: columns 2t and 2t + 1.
// The RMS norm of x is the prologue: each warp first sums x² over its rows of x (from L1/L2; the
// weights are what come from DRAM), then normalises x on the fly while it streams the weights.
// The intermediates are rounded to bf16 where the separate ops round them (the normalised x, the
// product, the rotated pair, act(gate)), so that a decode step gives the tokens that the same
// rows would get in a larger batch, which runs the separate ops (the GPU golden test checks it).
// When the tasks are too few to keep every SM's loads in flight (small N, long K: the down
// projection of a small model), 2 or 4 warps of a block share a task, each over a slice of K,
// and their partial sums meet in shared memory.
#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/gemv_common.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"
#include "sable/ops.h"

namespace sable::ops::cuda {
namespace {

// Warps a block: 4, or 8 where a task is split 8 ways (the slices of a task share a block).
constexpr int kWarps = 4, kMaxWarps = 8;
using Bf16 = __nv_bfloat16;

// GemvFusedArgs with typed pointers, passed by value to the kernel.
struct Args {
  const Bf16* x;
  int64_t ldx;
  const Bf16* w;
  const Bf16* bias;
  Bf16* out;
  int64_t ldo, m, n, k;
  const Bf16* norm_w;
  float eps, norm_offset;
  int32_t mode, act, accumulate, rope_cols, head_dim, rot_dim;
  const int32_t* positions;
  const float* cos_sin;
  int32_t splits;  // warps that share one task, each over a slice of K (1, 2, 4 or 8)
  bool hint;       // weight loads with the no-L1, 256-byte-L2 hint (gemv_cache_hint)
  bool early;      // the first weight loads before the wait and the norm (gemv_early_loads)
};
constexpr int kUnroll = 4;  // 16-byte loads of each weight row in flight per lane

__device__ __forceinline__ void unpack8(const uint4& v, float f[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ float dot8(const float x[8], const uint4& w) {
  float f[8];
  unpack8(w, f);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < 8; ++i) s = fmaf(x[i], f[i], s);
  return s;
}

// Rounds to bf16 and back: the value the separate ops would have stored.
__device__ __forceinline__ float bf16r(float x) { return __bfloat162float(__float2bfloat16(x)); }

__device__ __forceinline__ float activate(int act, float x) {
  switch (act) {
    case SABLE_ACT_SILU: return x / (1.0f + __expf(-x));
    case SABLE_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case SABLE_ACT_GELU_TANH:
      return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    default: return fmaxf(x, 0.0f);
  }
}

// The two weight rows of a task (r1 < 0: only r0) and the cos/sin column of a rotated pair
// (-1: not rotated). False when the task is past the end.
__device__ __forceinline__ bool task_rows(const Args& a, int64_t task, int64_t* r0,
                                          int64_t* r1, int* rot) {
  *rot = -1;
  if (a.mode == GemvFusedArgs::kGated) {
    if (task >= a.n / 2) return false;
    *r0 = task;
    *r1 = task + a.n / 2;
    return true;
  }
  const int64_t rope_tasks = a.rope_cols / 2;
  if (task < rope_tasks) {
    const int half_d = a.head_dim / 2, half_r = a.rot_dim / 2;
    const int64_t base = (task / half_d) * a.head_dim;
    const int j = static_cast<int>(task % half_d);
    if (j < half_r) {
      const bool neox = a.mode == GemvFusedArgs::kRopeNeox;
      *r0 = base + (neox ? j : 2 * j);
      *r1 = base + (neox ? j + half_r : 2 * j + 1);
      *rot = j;
    } else {
      *r0 = base + a.rot_dim + 2 * (j - half_r);
      *r1 = *r0 + 1;
    }
    return true;
  }
  const int64_t c = a.rope_cols + 2 * (task - rope_tasks);
  if (c >= a.n) return false;
  *r0 = c;
  *r1 = c + 1 < a.n ? c + 1 : -1;
  return true;
}

__device__ __forceinline__ void store(const Args& a, int m, int64_t col, float v) {
  __nv_bfloat16* p = a.out + m * a.ldo + col;
  if (a.accumulate) v = __bfloat162float(*p) + bf16r(v);  // the add op over the stored product
  *p = __float2bfloat16(v);
}

// Up to 64 registers for one or two rows of x (8 blocks of 4 warps per SM), 128 above.
template <int kM>
constexpr int kMinBlocks = kM <= 2 ? 8 : 4;  // of kWarps warps; half as many of kMaxWarps

template <int kM, bool kNorm>
__global__ void __launch_bounds__(kMaxWarps * 32, kMinBlocks<kM>* kWarps / kMaxWarps)
    gemv_fused_kernel(const Args a) {
  __shared__ float partial[kMaxWarps][2][kM];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int slice = warp % a.splits;  // this warp's part of K
  const int warps = blockDim.x >> 5;
  const int64_t task = int64_t(blockIdx.x) * (warps / a.splits) + warp / a.splits;
  int64_t r0 = 0, r1 = -1;
  int rot = -1;
  const bool valid = task_rows(a, task, &r0, &r1, &rot);
  const int64_t kv = a.k / 8;  // 16-byte vectors per row
  const int64_t per_slice = (kv + a.splits - 1) / a.splits;
  const int64_t k_begin = slice * per_slice;
  const int64_t k_end = k_begin + per_slice < kv ? k_begin + per_slice : kv;
  const uint4* w0 = reinterpret_cast<const uint4*>(a.w + r0 * a.k);
  const uint4* w1 = reinterpret_cast<const uint4*>(a.w + (r1 >= 0 ? r1 : r0) * a.k);
  uint4 wa[kUnroll], wb[kUnroll];
  auto load_batch = [&](int64_t base) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + 32 * u;
      if (i < k_end) {
        wa[u] = a.hint ? load_weight<1>(w0 + i) : load_weight<0>(w0 + i);
        wb[u] = a.hint ? load_weight<1>(w1 + i) : load_weight<0>(w1 + i);
      }
    }
  };
  // The first batch of weight loads is issued before the wait and before the norm's prologue:
  // they depend on neither, and a warp that first sums x² over K (16 L2 round trips at K 4096)
  // would otherwise leave the DRAM idle for that long (v5: the fused gate|up streamed at 83.8 us
  // against the plain GEMV's 78.6).
  const bool early = valid && a.early && k_begin + lane < k_end;
  if (early) load_batch(k_begin + lane);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (!valid) return;  // whole tasks only: a task's warps return together

  // The norm's 1/rms per row, over all of K (as the rms_norm op computes it).
  float inv[kM];
#pragma unroll
  for (int m = 0; m < kM; ++m) inv[m] = 1.0f;
  if constexpr (kNorm) {
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      float ss = 0.0f;
#pragma unroll 4
      for (int64_t i = lane; i < kv; i += 32) {
        float xf[8];
        unpack8(*reinterpret_cast<const uint4*>(a.x + m * a.ldx + i * 8), xf);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss = fmaf(xf[e], xf[e], ss);
      }
      inv[m] = rsqrtf(warp_sum(ss) / float(a.k) + a.eps);
    }
  }

  float acc0[kM], acc1[kM];
#pragma unroll
  for (int m = 0; m < kM; ++m) acc0[m] = acc1[m] = 0.0f;

  for (int64_t base = k_begin + lane; base < k_end; base += 32 * kUnroll) {
    if (!early || base != k_begin + lane) load_batch(base);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = base + 32 * u;
      if (i >= k_end) break;
      float g[8];
      if constexpr (kNorm) {
        unpack8(__ldg(reinterpret_cast<const uint4*>(a.norm_w) + i), g);
#pragma unroll
        for (int e = 0; e < 8; ++e) g[e] += a.norm_offset;
      }
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        float xf[8];
        unpack8(*reinterpret_cast<const uint4*>(a.x + m * a.ldx + i * 8), xf);
        if constexpr (kNorm) {
#pragma unroll
          for (int e = 0; e < 8; ++e) xf[e] = bf16r(bf16r(xf[e] * inv[m]) * g[e]);
        }
        acc0[m] += dot8(xf, wa[u]);
        acc1[m] += dot8(xf, wb[u]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < kM; ++m) {
    acc0[m] = warp_sum(acc0[m]);
    acc1[m] = warp_sum(acc1[m]);
  }
  if (a.splits > 1) {  // the first warp of the task adds the other slices' sums
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        partial[warp][0][m] = acc0[m];
        partial[warp][1][m] = acc1[m];
      }
    }
    // One named barrier per task (ids 1..warps/splits): a task's warps are all valid or all
    // returned above, so only that task's warps meet here.
    __syncwarp();
    asm volatile("bar.sync %0, %1;" ::"r"(1 + warp / a.splits), "r"(32 * a.splits));
    if (slice != 0) return;
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      for (int w = 1; w < a.splits; ++w) {
        acc0[m] += partial[warp + w][0][m];
        acc1[m] += partial[warp + w][1][m];
      }
    }
  }
  // Lane m finishes row m (compile-time indices into the accumulators, predicated by lane).
#pragma unroll
  for (int m = 0; m < kM; ++m) {
    if (lane != m) continue;
    float v0 = acc0[m], v1 = acc1[m];
    if (a.bias) {
      v0 += __bfloat162float(a.bias[r0]);
      if (r1 >= 0) v1 += __bfloat162float(a.bias[r1]);
    }
    v0 = bf16r(v0);  // the product as the gemm op stores it
    v1 = bf16r(v1);
    if (a.mode == GemvFusedArgs::kGated) {
      store(a, m, r0, bf16r(activate(a.act, v0)) * v1);
      continue;
    }
    if (rot >= 0) {
      const float* cs = a.cos_sin + int64_t(a.positions[m]) * a.rot_dim;
      const float c = cs[rot], s = cs[a.rot_dim / 2 + rot];
      const float t0 = v0 * c - v1 * s;
      v1 = v1 * c + v0 * s;
      v0 = t0;
    }
    store(a, m, r0, v0);
    if (r1 >= 0) store(a, m, r1, v1);
  }
}

template <int kM>
cudaError_t launch_m(const Args& a, bool norm, unsigned blocks, int warps, cudaStream_t s) {
  return norm ? sable::cuda::launch(gemv_fused_kernel<kM, true>, blocks, warps * 32, 0, s, a)
              : sable::cuda::launch(gemv_fused_kernel<kM, false>, blocks, warps * 32, 0, s, a);
}

}  // namespace

bool gemv_fused_supported(const GemvFusedArgs& a) {
  const bool rows_ok = a.m >= 1 && a.m <= kGemvFusedMaxM && a.k % 8 == 0 && a.ldx % 8 == 0;
  const bool aligned = aligned16(a.x) && aligned16(a.w) && (!a.norm_w || aligned16(a.norm_w));
  const bool rope_ok = a.rope_cols == 0 ||
                       (a.head_dim % 2 == 0 && a.rot_dim % 2 == 0 && a.rot_dim <= a.head_dim &&
                        a.rope_cols % a.head_dim == 0);
  return rows_ok && aligned && rope_ok;
}

bool gemv_fused(const GemvFusedArgs& g, void* stream) {
  if (!gemv_fused_supported(g)) return false;
  const int64_t tasks = g.mode == GemvFusedArgs::kGated
                            ? g.n / 2
                            : g.rope_cols / 2 + (g.n - g.rope_cols + 1) / 2;
  // Enough warps for ~16 per SM, splitting K while each slice keeps >= 64 vectors per row.
  const int64_t sms = sm_count();
  // Split K only while the grid still fits on the GPU at once: a second, partial wave of blocks
  // costs more than the loads in flight gain (1 or 2 rows of x: 8 blocks per SM, else 4).
  // Up to 8 slices (v20): Qwen2.5-0.5B's down projection (448 tasks, K 4864) in 4 slices gave
  // each lane 4.75 loads a row, two round trips; in 8, one. SABLE_GEMV_MAX_SPLITS=4 for the A/B.
  const int64_t resident_warps = sms * kWarps * (g.m <= 2 ? kMinBlocks<1> : kMinBlocks<8>);
  const int max_splits = gemv_max_splits();
  int splits = 1;
  while (splits < max_splits && tasks * splits < sms * 16 && g.k / 8 / (2 * splits) >= 64 &&
         tasks * splits * 2 <= resident_warps)
    splits *= 2;
  const int warps = splits > kWarps ? kMaxWarps : kWarps;
  const int64_t tasks_per_block = warps / splits;
  const unsigned blocks = static_cast<unsigned>((tasks + tasks_per_block - 1) / tasks_per_block);
  const bool norm = g.norm_w != nullptr;
  const cudaStream_t s = as_stream(stream);
  const Args a{static_cast<const Bf16*>(g.x),
               g.ldx,
               static_cast<const Bf16*>(g.w),
               static_cast<const Bf16*>(g.bias),
               static_cast<Bf16*>(g.out),
               g.ldo,
               g.m,
               g.n,
               g.k,
               static_cast<const Bf16*>(g.norm_w),
               g.eps,
               g.norm_offset,
               g.mode,
               g.act,
               g.accumulate,
               g.rope_cols,
               g.head_dim,
               g.rot_dim,
               g.positions,
               g.cos_sin,
               splits,
               gemv_cache_hint(),
               gemv_early_loads(g.w, g.n, g.k)};
  if (a.m < 1 || a.m > kGemvFusedMaxM) return false;
  using Launch = cudaError_t (*)(const Args&, bool, unsigned, int, cudaStream_t);
  constexpr Launch kLaunch[] = {launch_m<1>, launch_m<2>, launch_m<3>, launch_m<4>,
                                launch_m<5>, launch_m<6>, launch_m<7>, launch_m<8>};
  const cudaError_t e = kLaunch[a.m - 1](a, norm, blocks, warps, s);
  return e == cudaSuccess;
}

}  // namespace sable::ops::cuda
