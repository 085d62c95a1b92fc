// A LoRA call's whole delta in one launch, for the side branch beside the base GEMM at decode
// sizes (lora_ops.cpp, SABLE_LORA_EXPAND=one; v18 measured the branch of shrink, reduce and
// expand, four launches with the zeroing, outlasting o's and q|k|v's GEMMs at batch 64).
//
// Block (column block of one module, tile): it computes its tile's sums s[t][j] = x[row t] ·
// A[slot, j] itself (warps over the rank rows, lanes over K with 16-byte loads, a warp sum per
// row), keeps them in shared memory, then writes delta[row t, c] = Σ_j s[t][j] · B[slot, c, j] for
// its columns. There is no dependency between blocks: each column block of a tile recomputes the
// same sums, reading the slot's A (rank x K, 128 KB at rank 16 and K 4096) from L2 after the first,
// and the column blocks are sized so that the grid is about two blocks a SM. The fp32 deltas go to
// l.delta like lora_expand_to_delta's (rows outside every tile are not written); the sums are
// accumulated in another order than the split shrink's, so the bits differ from lora_expand's
// within fp32 rounding.
#include <algorithm>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

constexpr int kModules = SABLE_LORA_MODULE_COUNT;
constexpr int kTileRows = kLoraTileRows;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxTiles = 64;  // above this (prefill), the split shrink and the expand

struct DeltaPlan {
  int64_t cols = kThreads;                      // columns a block takes (a multiple of kThreads)
  int32_t col_block[kLoraMaxStacked + 1] = {};  // first blockIdx.x of each module
  bool vec = false;                             // 16-byte loads of x and A
};

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

template <class T>
DeltaPlan make_plan(const LoraLaunch& l) {
  DeltaPlan p;
  constexpr int v = Vec<T>::kN;
  p.vec = l.k % v == 0 && l.ldx % v == 0 && aligned16(l.x);
  int64_t total = 0;
  for (int i = 0; i < l.count; ++i) total += l.n[i];
  const int64_t per_tile = std::max<int64_t>(1, 2 * sm_count() / std::max<int64_t>(l.max_tiles, 1));
  p.cols = std::max<int64_t>(kThreads, ceil_div(ceil_div(total, per_tile), kThreads) * kThreads);
  for (int i = 0; i < l.count; ++i)
    p.col_block[i + 1] = p.col_block[i] + static_cast<int32_t>(ceil_div(l.n[i], p.cols));
  return p;
}

template <class T, int V>
__global__ void __launch_bounds__(kThreads) delta_kernel(LoraLaunch l, DeltaPlan p) {
  extern __shared__ float s[];  // [kTileRows][R]: the tile's sums, zero past the rows and rank
  const int R = l.rank_stride;
  int mi = 0;
  while (mi + 1 < l.count && static_cast<int>(blockIdx.x) >= p.col_block[mi + 1]) ++mi;
  const int module = l.module[mi];
  const int64_t n = l.n[mi];
  const int64_t c0 = static_cast<int64_t>(static_cast<int>(blockIdx.x) - p.col_block[mi]) * p.cols;
  const int tile_i = static_cast<int>(blockIdx.y);
  // The step block and the pools are written before the step (lora_kernels.cu): read them before
  // the wait for the predecessor.
  const T* a = static_cast<const T*>(l.view.a[l.layer * kModules + module]);
  const T* b = static_cast<const T*>(l.view.b[l.layer * kModules + module]);
  int slot = 0, rows = 0, rank = 0;
  int64_t row[kTileRows] = {};
  if (tile_i < *l.view.num_tiles && a != nullptr && b != nullptr) {
    const LoraTile& tile = l.view.tiles[tile_i];
    slot = tile.slot;
    rows = tile.rows;
    rank = min(l.view.slot_rank[slot * kModules + module], R);
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) row[t] = tile.row[t < rows ? t : 0];
  }
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (rank <= 0 || rows <= 0) return;  // block-uniform
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const T* x = static_cast<const T*>(l.x);
  for (int j = warp; j < R; j += kWarps) {
    float acc[kTileRows] = {};
    if (j < rank) {
      const T* arow = a + (static_cast<int64_t>(slot) * R + j) * l.k;
      for (int64_t k = lane * V; k < l.k; k += 32 * V) {
        float av[V];
        load_f32<T, V>(arow + k, av);
#pragma unroll
        for (int t = 0; t < kTileRows; ++t) {
          if (t >= rows) break;
          float xv[V];
          load_f32<T, V>(x + row[t] * l.ldx + k, xv);
#pragma unroll
          for (int e = 0; e < V; ++e) acc[t] = fmaf(av[e], xv[e], acc[t]);
        }
      }
#pragma unroll
      for (int t = 0; t < kTileRows; ++t)
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
    }
    if (lane == 0)
#pragma unroll
      for (int t = 0; t < kTileRows; ++t) s[t * R + j] = t < rows ? acc[t] : 0.0f;
  }
  __syncthreads();
  // Ranks past the slot's have s = 0, but B there may hold anything (a NaN times 0 is NaN): B is
  // masked by the rank before it is used.
  constexpr int BV = Vec<T>::kN;  // R is a multiple of kLoraRankAlign (8), so of BV
  float* dst = l.delta + l.delta_offset(mi);
  const int64_t c_end = min(c0 + p.cols, n);
  for (int64_t c = c0 + threadIdx.x; c < c_end; c += kThreads) {
    const T* br = b + (static_cast<int64_t>(slot) * n + c) * R;
    float acc[kTileRows] = {};
    for (int j = 0; j < rank; j += BV) {
      const Vec<T> bv = *reinterpret_cast<const Vec<T>*>(br + j);
#pragma unroll
      for (int e = 0; e < BV; ++e) {
        const float be = j + e < rank ? to_f32(bv.v[e]) : 0.0f;
#pragma unroll
        for (int t = 0; t < kTileRows; ++t) acc[t] = fmaf(s[t * R + j + e], be, acc[t]);
      }
    }
#pragma unroll
    for (int t = 0; t < kTileRows; ++t)
      if (t < rows) dst[row[t] * n + c] = acc[t];
  }
}

}  // namespace

bool lora_delta_one_takes(const LoraLaunch& l) {
  return l.max_tiles > 0 && l.max_tiles <= kMaxTiles && l.delta != nullptr && l.rows > 0 &&
         l.rank_stride > 0 && l.rank_stride % kLoraRankAlign == 0 && l.count >= 1 &&
         l.count <= kLoraMaxStacked;
}

bool lora_delta_one(const LoraLaunch& l, int32_t dtype, void* stream) {
  if (!lora_delta_one_takes(l)) return false;
  cudaError_t err = cudaErrorInvalidValue;
  dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const DeltaPlan p = make_plan<T>(l);
    const dim3 grid(static_cast<unsigned>(p.col_block[l.count]),
                    static_cast<unsigned>(l.max_tiles));
    const size_t smem = static_cast<size_t>(kTileRows) * l.rank_stride * sizeof(float);
    auto kernel = p.vec ? delta_kernel<T, Vec<T>::kN> : delta_kernel<T, 1>;
    err = sable::cuda::launch(kernel, grid, kThreads, smem, as_stream(stream), l, p);
  });
  return err == cudaSuccess;
}

}  // namespace sable::ops::cuda
