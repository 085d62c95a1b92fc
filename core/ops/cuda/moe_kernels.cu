// Fused mixture-of-experts on CUDA: group the (token, slot) pairs by expert, run both expert
// projections as grouped bf16 tensor-core GEMMs (one launch each for all experts), and combine the
// expert outputs per token with the routing weights. Also the expert-selection counter used for
// expert-distribution recording.
//
// Launch sequence of moe_experts (all on one stream, no host synchronisation, fixed grid sizes that
// depend only on T, k, E, H, I, so it is capturable in a CUDA graph):
//   1. group_kernel (1 block): histogram of ids, exclusive scans -> offsets/tile_offsets, scatter
//      -> perm/inv (moe_schedule.h explains the vocabulary).
//   2. grouped_gemm_kernel: gate_up[pos] = x[perm[pos] / k] · w_gate_up[e]ᵀ; the token rows are
//      gathered while loading A, so no permuted copy of x is made.
//   3. act_mul (elementwise_kernels.cu): act(gate) * up.
//   4. grouped_gemm_kernel: y[pos] = act[pos] · w_down[e]ᵀ.
//   5. combine_kernel: out[t] = sum_j weights[t, j] * y[inv[t*k + j]] in fp32, one write per token.
// The grouped GEMM: 64x64 output tiles, 4 warps of 32x32, mma.sync m16n8k16 bf16 with fp32
// accumulation, K in steps of 32 through a 3-stage cp.async pipeline. Each CTA owns one
// (expert, m-tile, n-tile), so a weight tile is read once per m-tile of its expert (once in decode).
#include <cstdint>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "core/ops/cuda/moe_schedule.h"
#include "sable/cuda/launch.cuh"
#include "sable/cuda/mma.cuh"

namespace sable::ops::cuda {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kBM = moe::kTileM, kBN = moe::kTileN, kBK = moe::kTileK;
constexpr int kLds = kBK + 8;  // padded smem row: 80 bytes keeps ldmatrix rows conflict-free
constexpr int kStages = 3;
constexpr int kGemmThreads = 128;
constexpr int kGroupThreads = 1024;

// ---- grouping ------------------------------------------------------------------------------

// Exclusive scan of one int per thread over the block (blockDim.x a multiple of 32, <= 1024).
// `warp_sums` holds 32 ints; *total receives the block sum.
__device__ int block_exclusive_scan(int v, int* warp_sums, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int x = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int s = lane < warps ? warp_sums[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, s, o);
      if (lane >= o) s += y;
    }
    warp_sums[lane] = s;  // inclusive prefix of warp totals
  }
  __syncthreads();
  const int excl = x - v + (warp > 0 ? warp_sums[warp - 1] : 0);
  *total = warp_sums[warps - 1];
  __syncthreads();  // warp_sums may be reused by the caller
  return excl;
}

// One block of kGroupThreads; dynamic smem: 2 * experts ints. ids outside [0, E) are dropped
// (inv = -1): the host validates what it can, the device never reads out of bounds.
__global__ void __launch_bounds__(kGroupThreads)
    group_kernel(const int32_t* __restrict__ ids, int32_t pairs, int32_t experts, int32_t bm,
                 int32_t* __restrict__ offsets, int32_t* __restrict__ tile_offsets,
                 int32_t* __restrict__ perm, int32_t* __restrict__ inv) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  extern __shared__ int smem[];
  __shared__ int warp_sums[32];
  int* count = smem;
  int* fill = smem + experts;
  for (int e = threadIdx.x; e < experts; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
    const int id = ids[i];
    if (id >= 0 && id < experts) atomicAdd(&count[id], 1);
  }
  __syncthreads();
  const int e = threadIdx.x;  // experts <= blockDim.x (checked on the host)
  const int c = e < experts ? count[e] : 0;
  int row_total = 0, tile_total = 0;
  const int row_start = block_exclusive_scan(c, warp_sums, &row_total);
  const int tile_start = block_exclusive_scan(moe::tiles_for(c, bm), warp_sums, &tile_total);
  if (e < experts) {
    offsets[e] = row_start;
    tile_offsets[e] = tile_start;
    fill[e] = row_start;
  }
  if (threadIdx.x == 0) {
    offsets[experts] = row_total;
    tile_offsets[experts] = tile_total;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
    const int id = ids[i];
    if (id >= 0 && id < experts) {
      const int pos = atomicAdd(&fill[id], 1);
      perm[pos] = i;
      inv[i] = pos;
    } else {
      inv[i] = -1;
    }
  }
}

// ---- grouped GEMM --------------------------------------------------------------------------

// Warp primitives: sable/cuda/mma.cuh.
using sable::cuda::cp_async16;
using sable::cuda::cp_async_commit;
using sable::cuda::cp_async_wait;
using sable::cuda::ldmatrix_x4;

// C[pos, n] = A[row(pos), :] · B[e][n, :]ᵀ for the sorted rows pos of expert e.
struct GemmParams {
  const bf16* a;           // [rows, K], rows lda apart
  int64_t lda;
  const int32_t* gather;   // when set, sorted row pos reads A row gather[pos] / gather_div
  int32_t gather_div;
  const bf16* b;           // [E, N, K] contiguous
  int32_t n, k;
  bf16* c;                 // [pairs, N], rows ldc apart
  int64_t ldc;
  const int32_t* offsets;       // [E+1]
  const int32_t* tile_offsets;  // [E+1]
  int32_t experts;
};

// kVec: K, lda multiples of 8 and A/B 16-byte aligned (cp.async path); else element loads.
template <bool kVec>
__global__ void __launch_bounds__(kGemmThreads) grouped_gemm_kernel(const GemmParams p) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  __shared__ __align__(16) bf16 as[kStages][kBM][kLds];
  __shared__ __align__(16) bf16 bs[kStages][kBN][kLds];
  moe::Tile tile;
  if (!moe::locate_tile(p.tile_offsets, p.offsets, p.experts, kBM, blockIdx.x, &tile)) return;
  const int n0 = blockIdx.y * kBN;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp >> 1, warp_n = warp & 1;
  const bf16* b_exp = p.b + int64_t(tile.expert) * p.n * p.k;
  const bf16 zero = __float2bfloat16(0.0f);

  auto a_row = [&](int r) -> const bf16* {  // r < tile.rows
    const int pos = tile.row0 + r;
    const int64_t src = p.gather ? p.gather[pos] / p.gather_div : pos;
    return p.a + src * p.lda;
  };

  // Vector path: each thread moves 2 16-byte chunks of A and of B per stage, rows ld_row and
  // ld_row + 32, chunk ld_chunk of the 4 per 32-wide row. Row pointers are fixed per thread.
  const int ld_row = tid >> 2, ld_chunk = tid & 3;
  const bf16* a_src[2];
  const bf16* b_src[2];
  bool a_ok[2], b_ok[2];
  if constexpr (kVec) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = ld_row + 32 * i;
      a_ok[i] = r < tile.rows;
      a_src[i] = a_ok[i] ? a_row(r) : p.a;
      b_ok[i] = n0 + r < p.n;
      b_src[i] = b_exp + int64_t(b_ok[i] ? n0 + r : 0) * p.k;
    }
  }

  auto load_stage = [&](int stage, int kt) {
    const int k0 = kt * kBK;
    if constexpr (kVec) {
      const int col = k0 + ld_chunk * 8;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = ld_row + 32 * i;
        const bool ai = a_ok[i] && col < p.k;
        const bool bi = b_ok[i] && col < p.k;
        cp_async16(&as[stage][r][ld_chunk * 8], ai ? a_src[i] + col : p.a, ai);
        cp_async16(&bs[stage][r][ld_chunk * 8], bi ? b_src[i] + col : p.b, bi);
      }
    } else {
      for (int idx = tid; idx < kBM * kBK; idx += kGemmThreads) {
        const int r = idx / kBK, cc = idx % kBK, col = k0 + cc;
        as[stage][r][cc] = (r < tile.rows && col < p.k) ? a_row(r)[col] : zero;
      }
      for (int idx = tid; idx < kBN * kBK; idx += kGemmThreads) {
        const int r = idx / kBK, cc = idx % kBK, col = k0 + cc;
        bs[stage][r][cc] = (n0 + r < p.n && col < p.k) ? b_exp[int64_t(n0 + r) * p.k + col] : zero;
      }
    }
  };

  float acc[2][4][4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mi][ni][i] = 0.0f;

  const int ktiles = (p.k + kBK - 1) / kBK;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }
  int a_r, a_c, b_r, b_c;
  moe::a_frag_src(lane, &a_r, &a_c);
  moe::b_frag_src(lane, &b_r, &b_c);
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kStages - 2>();  // tile kt has landed
    __syncthreads();               // ... for every thread, and stage (kt-1) is no longer read
    const int next = kt + kStages - 1;
    if (next < ktiles) load_stage(next % kStages, next);
    cp_async_commit();
    const int s = kt % kStages;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t af[2][4], bfr[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
        ldmatrix_x4(af[mi], &as[s][warp_m * 32 + mi * 16 + a_r][kk + a_c]);
#pragma unroll
      for (int nj = 0; nj < 2; ++nj)
        ldmatrix_x4(bfr[nj], &bs[s][warp_n * 32 + nj * 16 + b_r][kk + b_c]);
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          sable::cuda::mma_bf16(acc[mi][ni], af[mi], bfr[ni >> 1][(ni & 1) * 2], bfr[ni >> 1][(ni & 1) * 2 + 1]);
    }
  }
  cp_async_wait<0>();

  const bool pairs_ok = (p.ldc & 1) == 0;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int r, cl;
        moe::acc_pos(lane, 2 * h, &r, &cl);
        r += warp_m * 32 + mi * 16;
        cl += n0 + warp_n * 32 + ni * 8;
        if (r >= tile.rows || cl >= p.n) continue;
        bf16* dst = p.c + int64_t(tile.row0 + r) * p.ldc + cl;
        const float v0 = acc[mi][ni][2 * h], v1 = acc[mi][ni][2 * h + 1];
        if (cl + 1 < p.n && pairs_ok) {
          *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(v0, v1);
        } else {
          dst[0] = __float2bfloat16(v0);
          if (cl + 1 < p.n) dst[1] = __float2bfloat16(v1);
        }
      }
}

bool grouped_gemm(const GemmParams& p, int64_t pairs, cudaStream_t stream) {
  const int64_t m_tiles = moe::max_m_tiles(pairs, p.experts, kBM);
  const int64_t n_tiles = (p.n + kBN - 1) / kBN;
  if (m_tiles > 0x7fffffffLL || n_tiles > 65535) return false;
  const dim3 grid(static_cast<unsigned>(m_tiles), static_cast<unsigned>(n_tiles));
  const bool vec = p.k % 8 == 0 && p.lda % 8 == 0 && aligned16(p.a) && aligned16(p.b);
  const cudaError_t err =
      vec ? sable::cuda::launch(grouped_gemm_kernel<true>, grid, kGemmThreads, 0, stream, p)
          : sable::cuda::launch(grouped_gemm_kernel<false>, grid, kGemmThreads, 0, stream, p);
  return err == cudaSuccess;
}

// ---- combine and counting ------------------------------------------------------------------

// One block per token: out[t, :] = sum_j weights[t, j] * y[inv[t*k + j], :], fp32 sums.
template <bool kVec>
__global__ void combine_kernel(const bf16* __restrict__ y, const int32_t* __restrict__ inv,
                               const float* __restrict__ weights, int32_t top_k, int64_t hidden,
                               bf16* __restrict__ out) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  const int64_t t = blockIdx.x;
  const int32_t* ti = inv + t * top_k;
  const float* tw = weights + t * top_k;
  bf16* o = out + t * hidden;
  if constexpr (kVec) {
    for (int64_t h = threadIdx.x * 8; h < hidden; h += int64_t(blockDim.x) * 8) {
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int j = 0; j < top_k; ++j) {
        const int32_t pos = ti[j];
        if (pos < 0) continue;
        const float w = tw[j];
        const uint4 v = *reinterpret_cast<const uint4*>(y + int64_t(pos) * hidden + h);
        const __nv_bfloat162* v2 = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float2 f = __bfloat1622float2(v2[q]);
          acc[2 * q] = fmaf(w, f.x, acc[2 * q]);
          acc[2 * q + 1] = fmaf(w, f.y, acc[2 * q + 1]);
        }
      }
      uint4 r;
      __nv_bfloat162* r2 = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
      for (int q = 0; q < 4; ++q) r2[q] = __floats2bfloat162_rn(acc[2 * q], acc[2 * q + 1]);
      *reinterpret_cast<uint4*>(o + h) = r;
    }
  } else {
    for (int64_t h = threadIdx.x; h < hidden; h += blockDim.x) {
      float acc = 0.0f;
      for (int j = 0; j < top_k; ++j)
        if (ti[j] >= 0) acc = fmaf(tw[j], __bfloat162float(y[int64_t(ti[j]) * hidden + h]), acc);
      o[h] = __float2bfloat16(acc);
    }
  }
}

// Block histogram in shared memory, then one global atomic per non-empty bin.
__global__ void count_kernel(const int32_t* __restrict__ ids, int64_t n, int32_t experts,
                             unsigned long long* __restrict__ counts) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  extern __shared__ int hist[];
  for (int e = threadIdx.x; e < experts; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int id = ids[i];
    if (id >= 0 && id < experts) atomicAdd(&hist[id], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < experts; e += blockDim.x)
    if (hist[e] != 0) atomicAdd(&counts[e], static_cast<unsigned long long>(hist[e]));
}

}  // namespace

bool moe_experts(const MoeExpertsArgs& a, void* stream) {
  const int64_t pairs = a.tokens * a.top_k;
  if (a.experts < 1 || a.experts > moe::kMaxExperts || a.top_k < 1 || pairs > 0x7fffffffLL ||
      a.hidden < 1 || a.inter < 1 || a.hidden > 0x7fffffffLL || 2 * a.inter > 0x7fffffffLL)
    return false;
  if (a.tokens == 0) return true;
  cudaStream_t s = as_stream(stream);
  const int32_t e = a.experts, np = static_cast<int32_t>(pairs);
  if (sable::cuda::launch(group_kernel, 1, kGroupThreads, 2 * sizeof(int) * e, s, a.ids, np, e, kBM,
                         a.offsets, a.tile_offsets, a.perm, a.inv) != cudaSuccess)
    return false;
  GemmParams up{};
  up.a = static_cast<const bf16*>(a.x);
  up.lda = a.ldx;
  up.gather = a.perm;
  up.gather_div = a.top_k;
  up.b = static_cast<const bf16*>(a.w_gate_up);
  up.n = static_cast<int32_t>(2 * a.inter);
  up.k = static_cast<int32_t>(a.hidden);
  up.c = static_cast<bf16*>(a.gate_up);
  up.ldc = 2 * a.inter;
  up.offsets = a.offsets;
  up.tile_offsets = a.tile_offsets;
  up.experts = e;
  if (!grouped_gemm(up, pairs, s)) return false;
  if (!act_mul(a.act, a.gate_up, SABLE_DTYPE_BF16, pairs, a.inter, a.act_out, stream)) return false;
  GemmParams down = up;
  down.a = static_cast<const bf16*>(a.act_out);
  down.lda = a.inter;
  down.gather = nullptr;
  down.gather_div = 1;
  down.b = static_cast<const bf16*>(a.w_down);
  down.n = static_cast<int32_t>(a.hidden);
  down.k = static_cast<int32_t>(a.inter);
  down.c = static_cast<bf16*>(a.y);
  down.ldc = a.hidden;
  if (!grouped_gemm(down, pairs, s)) return false;
  const auto* y = static_cast<const bf16*>(a.y);
  auto* out = static_cast<bf16*>(a.out);
  const unsigned blocks = static_cast<unsigned>(a.tokens);
  const bool vec = a.hidden % 8 == 0 && aligned16(y) && aligned16(out);
  const cudaError_t err =
      vec ? sable::cuda::launch(combine_kernel<true>, blocks, 128, 0, s, y, a.inv, a.weights,
                                a.top_k, a.hidden, out)
          : sable::cuda::launch(combine_kernel<false>, blocks, 128, 0, s, y, a.inv, a.weights,
                                a.top_k, a.hidden, out);
  return err == cudaSuccess;
}

bool moe_count_experts(const int32_t* ids, int64_t n, int32_t experts, int64_t* counts,
                       void* stream) {
  if (experts < 1 || experts > 4 * moe::kMaxExperts) return false;  // smem histogram
  if (n == 0) return true;
  constexpr int kThreads = 256;
  const unsigned blocks = grid_for(n, kThreads, 1024);
  return sable::cuda::launch(count_kernel, blocks, kThreads, sizeof(int) * experts,
                             as_stream(stream), ids, n, experts,
                             reinterpret_cast<unsigned long long*>(counts)) == cudaSuccess;
}

}  // namespace sable::ops::cuda
