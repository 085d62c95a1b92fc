// mlp_fused (sable/ops.h) for decode batches of small models: the whole gated MLP of a layer —
// the RMS norm, gate|up with act(gate) * up, down, the residual add — as one kernel, whose weights
// are all in the SMs' shared memory at once.
//
// Why: at batch 1 a 0.5B model's MLP is two launches of latency-bound GEMVs (bench/NOTES.md v14:
// 16.6 + 8.7 us for 26 MB that the copy bandwidth moves in ~8), each one wave of short warps
// that wait on DRAM round trips, with the DRAM idle across the kernel boundary. Here each CTA
// (one per SM) copies its share of both weights — its slice J of gate|up's rows and its slice R
// of down's rows — into shared memory with cp.async at the start, before it waits for its
// predecessor (weights are never written by kernels), so the whole MLP's bytes are in flight at
// once; then:
//   1. every CTA normalises x (all of it, a few KB from L2) and computes a_J = act(gate_J · x') *
//      (up_J · x') from shared memory into a global scratch row a [M, I];
//   2. a grid barrier (all CTAs are resident: one per SM, the grid no larger than the GPU);
//   3. every CTA reads all of a (from L2) and computes out_R += down_R · a from shared memory.
// The intermediates round to bf16 where the two gemm_fused calls round them (x', the products,
// act(gate), a, the product of down), so results agree with them up to fp32 summation order.
//
// It takes shapes whose weights fit: (|J| * 2H + |R| * I) * 2 bytes per CTA within the opt-in
// shared memory (227 KB on Hopper): H x I up to ~29 MB of MLP on 132 SMs, e.g. Qwen2.5-0.5B
// (896 x 4864, 26 MB), Qwen3-0.6B, SmolLM2. Larger MLPs take the two calls.
//
// The grid barrier's counters are per stream (a slot of g_mlp_barrier), self-resetting: the last
// CTA to arrive zeroes the count and bumps the generation the others wait on, so graph replays
// find them ready. Two kernels of one stream never reach the barrier together (the second waits
// for the first to finish before its barrier), and distinct streams use distinct slots.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/gemv_common.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"
#include "sable/cuda/mma.cuh"

namespace sable::ops::cuda {
namespace {

using Bf16 = __nv_bfloat16;
constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxM = kMlpFusedMaxM;
constexpr int kSlots = 64;  // streams that may run the kernel (each its own barrier)

__device__ unsigned g_mlp_barrier[kSlots][2];  // [count, generation] per stream slot

struct Args {
  const Bf16* x;
  int64_t ldx;
  const Bf16* norm_w;  // [H] or null
  float eps, norm_offset;
  const Bf16* w_gate_up;  // [2I, H]
  const Bf16* w_down;     // [H, I]
  Bf16* act;              // [M, I] scratch
  Bf16* out;              // [M, H], ldo
  int64_t ldo;
  int32_t hidden, inter, act_kind;
  unsigned* barrier;  // this stream's [count, generation]
  bool early;         // the weights' copies may start before the predecessor finishes
};

// The CTA's share [begin, end) of n items split over the grid (sizes differ by at most one).
__device__ __forceinline__ int2 share(int n) {
  const long long g = gridDim.x, c = blockIdx.x;
  return make_int2(static_cast<int>(n * c / g), static_cast<int>(n * (c + 1) / g));
}

// Copies `vectors` 16-byte vectors from global `src` to shared `dst`, spread over the CTA.
__device__ __forceinline__ void copy_async(Bf16* dst, const Bf16* src, int vectors) {
  for (int v = threadIdx.x; v < vectors; v += kThreads)
    sable::cuda::cp_async16(dst + 8 * v, src + 8 * int64_t(v), true);
}

__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Every CTA of the grid arrives before any leaves; the writes before it are visible after it.
__device__ void grid_barrier(unsigned* barrier) {
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned* count = barrier;
    unsigned* generation = barrier + 1;
    const unsigned mine = load_acquire(generation);
    __threadfence();  // the CTA's writes (ordered before by __syncthreads) before the arrival
    if (atomicAdd(count, 1u) == gridDim.x - 1) {
      atomicExch(count, 0u);
      __threadfence();
      atomicAdd(generation, 1u);
    } else {
      while (load_acquire(generation) == mine) __nanosleep(32);
    }
    __threadfence();
  }
  __syncthreads();
}

template <int kM>
__global__ void __launch_bounds__(kThreads, 1) mlp_fused_kernel(const Args a) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int H = a.hidden, I = a.inter;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int2 units = share(I), rows = share(H);
  const int nu = units.y - units.x, nr = rows.y - rows.x;
  const int nu_max = (I + gridDim.x - 1) / gridDim.x, nr_max = (H + gridDim.x - 1) / gridDim.x;
  // Shared memory: gate rows then up rows of J [2 nu_max, H]; down's rows R [nr_max, I]; the
  // normalised x [kM, H] fp32 (reused for the partial sums of phase 3). Phase 3 reuses the
  // gate|up region for a [kM, I].
  Bf16* gu = reinterpret_cast<Bf16*>(smem);
  Bf16* dn = gu + int64_t(2) * nu_max * H;
  float* xn = reinterpret_cast<float*>(dn + int64_t(nr_max) * I);
  __shared__ float scratch[32];

  auto copy_weights = [&] {
    copy_async(gu, a.w_gate_up + int64_t(units.x) * H, nu * H / 8);
    copy_async(gu + int64_t(nu) * H, a.w_gate_up + int64_t(I + units.x) * H, nu * H / 8);
    sable::cuda::cp_async_commit();
    copy_async(dn, a.w_down + int64_t(rows.x) * I, nr * I / 8);
    sable::cuda::cp_async_commit();
  };
  if (a.early) copy_weights();
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (!a.early) copy_weights();

  // 1. x' = bf16(bf16(x / rms(x)) * (g + offset)) per row, in fp32 in shared memory.
  for (int m = 0; m < kM; ++m) {
    const Bf16* xr = a.x + m * a.ldx;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < H / 8; i += kThreads) {
      float f[8];
      unpack8(*reinterpret_cast<const uint4*>(xr + 8 * i), f);
#pragma unroll
      for (int e = 0; e < 8; ++e) ss = fmaf(f[e], f[e], ss);
    }
    const float inv = a.norm_w ? rsqrtf(block_sum(ss, scratch) / float(H) + a.eps) : 1.0f;
    for (int i = threadIdx.x; i < H / 8; i += kThreads) {
      float f[8], g[8];
      unpack8(*reinterpret_cast<const uint4*>(xr + 8 * i), f);
      if (a.norm_w) {
        unpack8(__ldg(reinterpret_cast<const uint4*>(a.norm_w) + i), g);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = bf16r(bf16r(f[e] * inv) * (g[e] + a.norm_offset));
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) xn[m * H + 8 * i + e] = f[e];
    }
  }
  sable::cuda::cp_async_wait<1>();  // gate|up's rows are in (down's may still be coming)
  __syncthreads();

  // 2. a_j = bf16(bf16(act(bf16(gate_j · x'))) * bf16(up_j · x')), one warp per unit j.
  for (int u = warp; u < nu; u += kWarps) {
    const Bf16* gr = gu + int64_t(u) * H;
    const Bf16* ur = gu + int64_t(nu + u) * H;
    float g[kM], p[kM];
#pragma unroll
    for (int m = 0; m < kM; ++m) g[m] = p[m] = 0.0f;
    for (int i = lane; i < H / 8; i += 32) {
      float wg[8], wu[8];
      unpack8(*reinterpret_cast<const uint4*>(gr + 8 * i), wg);
      unpack8(*reinterpret_cast<const uint4*>(ur + 8 * i), wu);
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        const float* xv = xn + m * H + 8 * i;
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          g[m] = fmaf(wg[e], xv[e], g[m]);
          p[m] = fmaf(wu[e], xv[e], p[m]);
        }
      }
    }
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      const float gs = warp_sum(g[m]), ps = warp_sum(p[m]);
      if (lane == m)
        a.act[int64_t(m) * I + units.x + u] =
            __float2bfloat16(bf16r(activate(a.act_kind, bf16r(gs))) * bf16r(ps));
    }
  }
  grid_barrier(a.barrier);

  // 3. out_r += bf16(down_r · a) for r in R: all of a into shared memory (from L2: ld.cg, the
  // other CTAs wrote it), then (row, slice of I) tasks over the warps, slices summed in order.
  Bf16* as = gu;
  for (int v = threadIdx.x; v < kM * I / 8; v += kThreads)
    reinterpret_cast<uint4*>(as)[v] = __ldcg(reinterpret_cast<const uint4*>(a.act) + v);
  sable::cuda::cp_async_wait<0>();
  __syncthreads();
  const int slices = nr > 0 && nr < kWarps ? kWarps / nr : 1;
  float* part = xn;  // [nr, slices, kM]
  const int iv = I / 8;
  for (int t = warp; t < nr * slices; t += kWarps) {
    const int r = t / slices, s = t % slices;
    const Bf16* dr = dn + int64_t(r) * I;
    float acc[kM];
#pragma unroll
    for (int m = 0; m < kM; ++m) acc[m] = 0.0f;
    const int end = iv * (s + 1) / slices;
    for (int i = iv * s / slices + lane; i < end; i += 32) {
      float w[8];
      unpack8(*reinterpret_cast<const uint4*>(dr + 8 * i), w);
#pragma unroll
      for (int m = 0; m < kM; ++m) {
        float av[8];
        unpack8(*reinterpret_cast<const uint4*>(as + int64_t(m) * I + 8 * i), av);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[m] = fmaf(w[e], av[e], acc[m]);
      }
    }
#pragma unroll
    for (int m = 0; m < kM; ++m) {
      const float v = warp_sum(acc[m]);
      if (lane == m) part[(r * slices + s) * kM + m] = v;
    }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < nr * kM; t += kThreads) {
    const int r = t / kM, m = t % kM;
    float v = 0.0f;
    for (int s = 0; s < slices; ++s) v += part[(r * slices + s) * kM + m];
    Bf16* o = a.out + int64_t(m) * a.ldo + rows.x + r;
    *o = __float2bfloat16(__bfloat162float(*o) + bf16r(v));  // the add over the stored product
  }
}

// Dynamic shared memory of one CTA for m rows on `grid` CTAs; 0 when a's [m, I] does not fit in
// the gate|up region it reuses.
size_t smem_bytes(int64_t m, int64_t hidden, int64_t inter, int64_t grid) {
  const int64_t nu_max = (inter + grid - 1) / grid, nr_max = (hidden + grid - 1) / grid;
  const int64_t gate_up = 2 * nu_max * hidden * 2, down = nr_max * inter * 2;
  // The normalised x, later the partial sums: at most max(kWarps, nr_max) (row, slice) tasks.
  const int64_t tail = std::max(m * hidden, std::max<int64_t>(kWarps, nr_max) * m) * 4;
  if (m * inter * 2 > gate_up) return 0;
  return static_cast<size_t>(gate_up + down + tail);
}

int max_smem_optin() {
  static const int v = [] {
    int dev = 0, bytes = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
      return 0;
    return bytes;
  }();
  return v;
}

// The barrier slot of (device, stream), or nullptr when every slot is taken.
unsigned* barrier_for(cudaStream_t stream) {
  static std::mutex mu;
  static std::map<std::pair<int, cudaStream_t>, int> slots;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, fresh] = slots.try_emplace({dev, stream}, static_cast<int>(slots.size()));
  if (it->second >= kSlots) return nullptr;
  static std::map<int, unsigned*> bases;  // g_mlp_barrier's address on each device
  auto base = bases.find(dev);
  if (base == bases.end()) {
    void* p = nullptr;
    if (cudaGetSymbolAddress(&p, g_mlp_barrier) != cudaSuccess) return nullptr;
    base = bases.emplace(dev, static_cast<unsigned*>(p)).first;
  }
  return base->second + 2 * it->second;
}

template <int kM>
bool launch_m(const Args& a, size_t smem, cudaStream_t s) {
  static const bool ready =
      cudaFuncSetAttribute(mlp_fused_kernel<kM>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           max_smem_optin()) == cudaSuccess;
  return ready && sable::cuda::launch(mlp_fused_kernel<kM>, static_cast<unsigned>(sm_count()),
                                      kThreads, smem, s, a) == cudaSuccess;
}

}  // namespace

bool mlp_fused_fits(int64_t m, int64_t hidden, int64_t inter) {
  if (m < 1 || m > kMaxM || hidden % 8 != 0 || inter % 8 != 0 || hidden <= 0 || inter <= 0)
    return false;
  const size_t bytes = smem_bytes(m, hidden, inter, sm_count());
  return bytes > 0 && bytes <= static_cast<size_t>(max_smem_optin());
}

bool mlp_fused(const MlpFusedArgs& g, void* stream) {
  if (!mlp_fused_fits(g.m, g.hidden, g.inter) || g.ldx % 8 != 0 || !aligned16(g.x) ||
      !aligned16(g.w_gate_up) || !aligned16(g.w_down) || !aligned16(g.act) ||
      (g.norm_w != nullptr && !aligned16(g.norm_w)))
    return false;
  const cudaStream_t s = as_stream(stream);
  unsigned* barrier = barrier_for(s);
  if (barrier == nullptr) return false;
  const Args a{static_cast<const Bf16*>(g.x),
               g.ldx,
               static_cast<const Bf16*>(g.norm_w),
               g.eps,
               g.norm_offset,
               static_cast<const Bf16*>(g.w_gate_up),
               static_cast<const Bf16*>(g.w_down),
               static_cast<Bf16*>(g.act),
               static_cast<Bf16*>(g.out),
               g.ldo,
               static_cast<int32_t>(g.hidden),
               static_cast<int32_t>(g.inter),
               g.act_kind,
               barrier,
               g.early};
  const size_t smem = smem_bytes(g.m, g.hidden, g.inter, sm_count());
  switch (g.m) {
    case 1:
      return launch_m<1>(a, smem, s);
    case 2:
      return launch_m<2>(a, smem, s);
    case 3:
      return launch_m<3>(a, smem, s);
    case 4:
      return launch_m<4>(a, smem, s);
    default:
      return false;
  }
}

}  // namespace sable::ops::cuda
