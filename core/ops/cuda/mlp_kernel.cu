// mlp_fused (sable/ops.h) for decode batches of small models: the whole gated MLP of a layer —
// the RMS norm, gate|up with act(gate) * up, down, the residual add — as one kernel, whose weights
// are all in the SMs' shared memory at once.
//
// Why: at batch 1 a 0.5B model's MLP is two launches of latency-bound GEMVs (bench/NOTES.md v14:
// 16.6 + 8.7 us for 26 MB that the copy bandwidth moves in ~8), each one wave of short warps
// that wait on DRAM round trips, with the DRAM idle across the kernel boundary. Here the work is
// G chunks of each phase (G = the SMs, one CTA each): chunk c of phase 1 is a slice J of the
// intermediate units (gate|up rows), chunk c of phase 2 a slice R of down's rows. Each CTA claims
// one chunk of each phase when it starts and copies both chunks' weights into shared memory with
// cp.async before it waits for its predecessor (weights are never written by kernels), so the
// whole MLP's bytes are in flight at once; then:
//   1. it normalises x (all of it, a few KB from L2) and computes a_J = act(gate_J · x') *
//      (up_J · x') into a global scratch row a [M, I];
//   2. it waits until every phase-1 chunk is done, all of a;
//   3. it reads a (from L2) and computes out_R += down_R · a.
// The wait cannot hang when some CTAs are not resident (another kernel holding SMs, even another
// stream's copy of this one): a CTA that would wait first claims the chunks no CTA has claimed
// and computes them itself from global memory, and a CTA that starts after every chunk is claimed
// has nothing to do. Only CTAs that are running ever hold a chunk, so the last chunk finishes.
// A chunk's arithmetic is the same wherever its weights come from: the bits do not depend on
// which CTA ran it.
// The intermediates round to bf16 where the two gemm_fused calls round them (x', the products,
// act(gate), a, the product of down), so results agree with them up to fp32 summation order.
//
// It takes shapes whose weights fit: (|J| * 2H + |R| * I) * 2 bytes per CTA within the opt-in
// shared memory (227 KB on Hopper): H x I up to ~29 MB of MLP on 132 SMs, e.g. Qwen2.5-0.5B
// (896 x 4864, 26 MB), Qwen3-0.6B, SmolLM2. Larger MLPs take the two calls.
//
// The claim counters are per stream (a slot of g_mlp_counters) and reset by the last CTA to exit,
// so graph replays find them at zero. A kernel of the stream claims only after the previous one
// finished: every kernel between them waits for its predecessor before it lets the next start.
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
constexpr int kSlots = 64;  // streams that may run the kernel (each its own counters)

// Per stream: chunks of phase 1 claimed and done, chunks of phase 2 claimed, CTAs exited.
struct Counters {
  unsigned claimed1, done1, claimed2, exited;
};
__device__ Counters g_mlp_counters[kSlots];

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
  Counters* counters;  // this stream's
  bool early;          // the weights' copies may start before the predecessor finishes
};

// Chunk c's share [begin, end) of n items split into gridDim.x chunks (sizes differ by <= 1).
__device__ __forceinline__ int2 share(int n, int c) {
  const long long g = gridDim.x;
  return make_int2(static_cast<int>(n * (long long)c / g), static_cast<int>(n * (c + 1LL) / g));
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

// Thread 0 claims the next unclaimed chunk of a phase; every thread gets it (>= gridDim.x: none
// left). `slot` is a shared int.
__device__ __forceinline__ int claim(unsigned* claimed, int* slot) {
  __syncthreads();
  if (threadIdx.x == 0)
    *slot = load_acquire(claimed) < gridDim.x ? static_cast<int>(atomicAdd(claimed, 1u))
                                              : static_cast<int>(gridDim.x);
  __syncthreads();
  return *slot;
}

// Phase 1, chunk c: a[m, j] for the units j of c, one warp a unit. gate rows at g_rows, up rows
// at u_rows (the chunk's first unit; shared or global memory), x' in xn [kM, H].
template <int kM>
__device__ void gate_up_chunk(const Args& a, int c, const Bf16* g_rows, const Bf16* u_rows,
                              const float* xn) {
  const int H = a.hidden, lane = threadIdx.x & 31;
  const int2 units = share(a.inter, c);
  for (int u = threadIdx.x >> 5; u < units.y - units.x; u += kWarps) {
    const Bf16* gr = g_rows + int64_t(u) * H;
    const Bf16* ur = u_rows + int64_t(u) * H;
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
        a.act[int64_t(m) * a.inter + units.x + u] =
            __float2bfloat16(bf16r(activate(a.act_kind, bf16r(gs))) * bf16r(ps));
    }
  }
}

// Phase 3, chunk c: out[m, r] += bf16(down_r · a_m) for the rows r of c (rows at d_rows, shared
// or global), a [kM, I] in shared memory; (row, slice of I) tasks over the warps, the slices'
// sums added in order. part: kWarps * kM floats of shared memory.
template <int kM>
__device__ void down_chunk(const Args& a, int c, const Bf16* d_rows, const Bf16* as, float* part) {
  const int I = a.inter, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int2 rows = share(a.hidden, c);
  const int nr = rows.y - rows.x;
  const int slices = nr > 0 && nr < kWarps ? kWarps / nr : 1;
  const int iv = I / 8;
  for (int r0 = 0; r0 < nr; r0 += kWarps / slices) {  // rounds of at most kWarps tasks
    const int rn = min(nr - r0, kWarps / slices);
    const int t = warp;
    if (t < rn * slices) {
      const int r = r0 + t / slices, s = t % slices;
      const Bf16* dr = d_rows + int64_t(r) * I;
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
        if (lane == m) part[t * kM + m] = v;
      }
    }
    __syncthreads();
    if (threadIdx.x < rn * kM) {
      const int r = threadIdx.x / kM, m = threadIdx.x % kM;
      float v = 0.0f;
      for (int s = 0; s < slices; ++s) v += part[(r * slices + s) * kM + m];
      Bf16* o = a.out + int64_t(m) * a.ldo + rows.x + r0 + r;
      *o = __float2bfloat16(__bfloat162float(*o) + bf16r(v));  // the add over the stored product
    }
    __syncthreads();
  }
}

template <int kM>
__global__ void __launch_bounds__(kThreads, 1) mlp_fused_kernel(const Args a) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ float scratch[32];
  __shared__ int slot;
  const int H = a.hidden, I = a.inter, G = gridDim.x;
  const int nu_max = (I + G - 1) / G, nr_max = (H + G - 1) / G;
  // Shared memory: the own phase-1 chunk's gate rows then up rows [2 nu_max, H]; the own
  // phase-3 chunk's down rows [nr_max, I]; x' [kM, H] fp32, later the partial sums. Phase 3
  // reuses the gate|up region for a [kM, I].
  Bf16* gu = reinterpret_cast<Bf16*>(smem);
  Bf16* dn = gu + int64_t(2) * nu_max * H;
  float* xn = reinterpret_cast<float*>(dn + int64_t(nr_max) * I);
  Counters* cnt = a.counters;

  // Claims come before the wait: the stream's previous kernel of this kind has finished (see the
  // file's head), and the chunks must be known to copy their weights early.
  const int own1 = claim(&cnt->claimed1, &slot);
  const int own2 = claim(&cnt->claimed2, &slot);
  const int2 units = share(I, min(own1, G - 1)), rows = share(H, min(own2, G - 1));
  const int nu = units.y - units.x;
  auto copy_weights = [&] {
    if (own1 < G) {
      copy_async(gu, a.w_gate_up + int64_t(units.x) * H, nu * H / 8);
      copy_async(gu + int64_t(nu) * H, a.w_gate_up + int64_t(I + units.x) * H, nu * H / 8);
    }
    sable::cuda::cp_async_commit();
    if (own2 < G) copy_async(dn, a.w_down + int64_t(rows.x) * I, (rows.y - rows.x) * I / 8);
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
  sable::cuda::cp_async_wait<1>();  // the own gate|up rows are in (down's may still be coming)
  __syncthreads();

  // 2. The own phase-1 chunk, then any unclaimed ones from global memory, then the wait for all.
  auto finish1 = [&] {
    __threadfence();  // this thread's a before the count (with __syncthreads: the CTA's)
    __syncthreads();
    if (threadIdx.x == 0) atomicAdd(&cnt->done1, 1u);
  };
  if (own1 < G) {
    gate_up_chunk<kM>(a, own1, gu, gu + int64_t(nu) * H, xn);
    finish1();
  }
  for (int c = claim(&cnt->claimed1, &slot); c < G; c = claim(&cnt->claimed1, &slot)) {
    const int64_t u0 = share(I, c).x;
    gate_up_chunk<kM>(a, c, a.w_gate_up + u0 * H, a.w_gate_up + (I + u0) * H, xn);
    finish1();
  }
  if (threadIdx.x == 0)
    while (load_acquire(&cnt->done1) < static_cast<unsigned>(G)) __nanosleep(32);
  __syncthreads();

  // 3. All of a into shared memory (ld.cg: other CTAs wrote it), then the own phase-3 chunk and
  // any unclaimed ones.
  Bf16* as = gu;
  for (int v = threadIdx.x; v < kM * I / 8; v += kThreads)
    reinterpret_cast<uint4*>(as)[v] = __ldcg(reinterpret_cast<const uint4*>(a.act) + v);
  sable::cuda::cp_async_wait<0>();
  __syncthreads();
  if (own2 < G) down_chunk<kM>(a, own2, dn, as, xn);
  for (int c = claim(&cnt->claimed2, &slot); c < G; c = claim(&cnt->claimed2, &slot))
    down_chunk<kM>(a, c, a.w_down + int64_t(share(H, c).x) * I, as, xn);

  // The last CTA out resets the counters for the stream's next launch (every CTA has claimed
  // before it counts itself out).
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    if (atomicAdd(&cnt->exited, 1u) == static_cast<unsigned>(G) - 1) {
      atomicExch(&cnt->claimed1, 0u);
      atomicExch(&cnt->done1, 0u);
      atomicExch(&cnt->claimed2, 0u);
      atomicExch(&cnt->exited, 0u);
      __threadfence();
    }
  }
}

// Dynamic shared memory of one CTA for m rows on `grid` CTAs; 0 when a's [m, I] does not fit in
// the gate|up region it reuses.
size_t smem_bytes(int64_t m, int64_t hidden, int64_t inter, int64_t grid) {
  const int64_t nu_max = (inter + grid - 1) / grid, nr_max = (hidden + grid - 1) / grid;
  const int64_t gate_up = 2 * nu_max * hidden * 2, down = nr_max * inter * 2;
  // The normalised x, later the partial sums of at most kWarps (row, slice) tasks.
  const int64_t tail = std::max<int64_t>(m * hidden, kWarps * m) * 4;
  if (m * inter * 2 > gate_up) return 0;
  return static_cast<size_t>(gate_up + down + tail);
}

// The dynamic shared memory a CTA may ask for: the device's opt-in limit less a margin for the
// kernel's static shared memory (~150 bytes), which counts against the same limit.
int max_smem_optin() {
  static const int v = [] {
    int dev = 0, bytes = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess)
      return 0;
    return std::max(bytes - 1024, 0);
  }();
  return v;
}

// The counters of (device, stream), or nullptr when every slot is taken.
Counters* counters_for(cudaStream_t stream) {
  static std::mutex mu;
  static std::map<std::pair<int, cudaStream_t>, int> slots;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, fresh] = slots.try_emplace({dev, stream}, static_cast<int>(slots.size()));
  if (it->second >= kSlots) return nullptr;
  static std::map<int, Counters*> bases;  // g_mlp_counters' address on each device
  auto base = bases.find(dev);
  if (base == bases.end()) {
    void* p = nullptr;
    if (cudaGetSymbolAddress(&p, g_mlp_counters) != cudaSuccess) return nullptr;
    base = bases.emplace(dev, static_cast<Counters*>(p)).first;
  }
  return base->second + it->second;
}

template <int kM>
bool launch_m(const Args& a, int64_t grid, size_t smem, cudaStream_t s) {
  static const bool ready =
      cudaFuncSetAttribute(mlp_fused_kernel<kM>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           max_smem_optin()) == cudaSuccess;
  return ready && sable::cuda::launch(mlp_fused_kernel<kM>, static_cast<unsigned>(grid), kThreads,
                                      smem, s, a) == cudaSuccess;
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
  Counters* counters = counters_for(s);
  if (counters == nullptr) return false;
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
               counters,
               g.early};
  const int64_t grid = g.grid > 0 ? g.grid : sm_count();
  const size_t smem = smem_bytes(g.m, g.hidden, g.inter, grid);
  if (smem == 0 || smem > static_cast<size_t>(max_smem_optin())) return false;
  switch (g.m) {
    case 1:
      return launch_m<1>(a, grid, smem, s);
    case 2:
      return launch_m<2>(a, grid, smem, s);
    case 3:
      return launch_m<3>(a, grid, smem, s);
    case 4:
      return launch_m<4>(a, grid, smem, s);
    default:
      return false;
  }
}

}  // namespace sable::ops::cuda
