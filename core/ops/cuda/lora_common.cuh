// The pieces of the LoRA kernels (lora_kernels.cu: the split shrink, its reduce and the expand):
// the launch plan, one warp's part of the shrink, the split sums in their fixed order, an expand
// column and the step block's per-tile lookups, apart from the kernels that put them together
// (v22's one-launch cluster form reused them for the same bits; measured slower and removed,
// bench/NOTES.md v23). Included only from .cu files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"

namespace sable::ops::cuda::lora_detail {

constexpr int kModules = SABLE_LORA_MODULE_COUNT;
constexpr int kTileRows = kLoraTileRows;
constexpr int kShrinkWarps = 4;
constexpr int kRanksPerWarp = 4;
constexpr int kRanksPerBlock = kShrinkWarps * kRanksPerWarp;
constexpr int kExpandThreads = 256;
constexpr int64_t kExpandSmemBytes = 32 << 10;  // most shared memory an expand block's sums take
constexpr int64_t kSplitK = 512;  // K elements per split before rounding to warp steps
constexpr int64_t kMaxSplits = 32;
constexpr int64_t kMaxSplitBlocks = 4096;  // tiles x splits above which K is split less
// K steps of A in registers before the wait (kSplitK = 2 steps of 32 lanes x 8 bf16).
constexpr int kShrinkPreload = 2;
// 16-byte loads of a B row before the wait (rank 16 in bf16).
constexpr int kExpandPreload = 2;

struct Plan {
  int vec = 1;  // elements per load of x and A
  int32_t splits = 1;
  int64_t k_chunk = 0;
  int32_t rank_blocks = 1;
  int32_t col_block[kLoraMaxStacked + 1] = {};  // expand: first blockIdx.x of each module
  int32_t tile_groups = 1;  // expand: gridDim.y; block (x, g) takes tiles g, g + G, ...
  int32_t group_tiles = 1;  // expand: most tiles a block takes (max_tiles / G rounded up)
};

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// K elements per shrink split: kSplitK, or SABLE_LORA_SPLIT_K (a multiple of 256; for A/B runs).
inline int64_t split_k() {
  static const int64_t v = [] {
    const char* e = std::getenv("SABLE_LORA_SPLIT_K");
    const int64_t n = e ? std::atoll(e) : 0;
    return n >= 256 && n % 256 == 0 ? n : kSplitK;
  }();
  return v;
}

template <class T>
Plan make_plan(const LoraLaunch& l) {
  Plan p;
  constexpr int v = Vec<T>::kN;
  p.vec = l.k % v == 0 && l.ldx % v == 0 && aligned16(l.x) ? v : 1;
  int64_t splits = std::clamp<int64_t>(ceil_div(l.k, split_k()), 1, kMaxSplits);
  while (splits > 1 && l.max_tiles * splits > kMaxSplitBlocks) splits = ceil_div(splits, 2);
  const int64_t step = 32 * p.vec;
  p.k_chunk = ceil_div(ceil_div(l.k, splits), step) * step;
  p.splits = static_cast<int32_t>(ceil_div(l.k, p.k_chunk));
  p.rank_blocks = static_cast<int32_t>(ceil_div(l.rank_stride, kRanksPerBlock));
  for (int i = 0; i < l.count; ++i)
    p.col_block[i + 1] = p.col_block[i] + static_cast<int32_t>(ceil_div(l.n[i], kExpandThreads));
  // About two expand blocks a SM: the tiles are shared out among groups of column blocks so that
  // the grid is one wave whatever the projection's width.
  // A block's tiles' sums stay within kExpandSmemBytes of shared memory (prefill batches have
  // many tiles: they get more groups instead).
  const int64_t tiles = std::max<int64_t>(l.max_tiles, 1);
  const int64_t cap = std::max<int64_t>(1, kExpandSmemBytes / (kTileRows * l.rank_stride * 4));
  const int64_t groups =
      std::max(ceil_div(2 * sm_count(), p.col_block[l.count]), ceil_div(tiles, cap));
  p.tile_groups = static_cast<int32_t>(std::clamp<int64_t>(groups, 1, tiles));
  p.group_tiles = static_cast<int32_t>(ceil_div(tiles, p.tile_groups));
  return p;
}

// The sums over a warp's 32 lanes of 32 values each, one per lane: at each halving step a lane
// keeps the half of its values its lane bit selects and adds the partner's copy of that half, so
// lane L ends with the full sum of value L (row-major over acc).
__device__ __forceinline__ float transpose_sum(float (&acc)[kRanksPerWarp][kTileRows], int lane) {
  static_assert(kRanksPerWarp * kTileRows == 32, "one value per lane");
  float v[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) v[i] = acc[i / kTileRows][i % kTileRows];
#pragma unroll
  for (int half = 16; half > 0; half >>= 1) {
    const bool upper = (lane & half) != 0;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const float keep = upper ? v[i + half] : v[i];
      const float send = upper ? v[i] : v[i + half];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, half);
    }
  }
  return v[0];
}

// The K splits' partials split(0), split(1), ... summed in four independent chains (the loads
// are in flight together), split z into chain z % 4 and the splits past the last whole group of
// four into chain 0.
template <class Split>
__device__ __forceinline__ float sum_splits(int splits, const Split& split) {
  float c[4] = {};
  int z = 0;
  for (; z + 4 <= splits; z += 4)
#pragma unroll
    for (int u = 0; u < 4; ++u) c[u] += split(z + u);
  for (; z < splits; ++z) c[0] += split(z);
  return (c[0] + c[1]) + (c[2] + c[3]);
}

// One tile's adapter for one module, from the step block: the slot's weights in `pools` (the A or
// B pool of each projection), its rows and its rank. w == nullptr (rank 0) past the step's tiles
// or where the projection has no pool.
struct TileRef {
  const void* w = nullptr;
  const LoraTile* tile = nullptr;
  int slot = 0, rows = 0, rank = 0;
};

__device__ __forceinline__ TileRef tile_ref(const LoraLaunch& l, const void* const* pools,
                                            int tile_i, int module) {
  TileRef r;
  if (tile_i >= *l.view.num_tiles) return r;
  r.w = pools[l.layer * kModules + module];
  if (r.w == nullptr) return r;
  r.tile = &l.view.tiles[tile_i];
  r.slot = r.tile->slot;
  r.rows = r.tile->rows;
  r.rank = min(l.view.slot_rank[r.slot * kModules + module], l.rank_stride);
  return r;
}

// One warp's part of the shrink: kRanksPerWarp rank rows of A[slot] from j0 (those below the
// slot's rank) against a tile's rows of x over K [kb, ke), lanes over K in 16-byte steps. The
// first kShrinkPreload steps of A are loaded by preload() (before the PDL wait: A is written by
// no kernel); sums() then reads x and returns lane L's sum: rank j0 + L / kTileRows, tile row
// L % kTileRows.
template <class T, int V>
struct ShrinkWarp {
  const T* arow = nullptr;  // nullptr: no rank row of this warp is below the slot's rank
  int j0 = 0, rank = 0;
  int64_t kb = 0, ke = 0;
  float a0[kShrinkPreload][kRanksPerWarp][V];

  __device__ __forceinline__ void init(const LoraLaunch& l, const TileRef& ref, int j0_,
                                       int64_t kb_, int64_t k_chunk) {
    j0 = j0_;
    rank = ref.rank;
    kb = kb_;
    ke = min(l.k, kb + k_chunk);
    arow = j0 < rank ? static_cast<const T*>(ref.w) +
                           (static_cast<int64_t>(ref.slot) * l.rank_stride + j0) * l.k
                     : nullptr;
  }
  __device__ __forceinline__ void load_a(const LoraLaunch& l, int64_t i,
                                         float (&av)[kRanksPerWarp][V]) const {
#pragma unroll
    for (int r = 0; r < kRanksPerWarp; ++r) {
      if (j0 + r < rank) {
        load_f32<T, V>(arow + r * l.k + i, av[r]);
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) av[r][e] = 0.0f;
      }
    }
  }
  __device__ __forceinline__ void preload(const LoraLaunch& l, int lane) {
#pragma unroll
    for (int st = 0; st < kShrinkPreload; ++st) {
      const int64_t i = kb + lane * V + st * 32 * V;
      if (arow != nullptr && i < ke) load_a(l, i, a0[st]);
    }
  }
  __device__ __forceinline__ float sums(const LoraLaunch& l, const int64_t (&xoff)[kTileRows],
                                        int rows, int lane) const {
    const T* x = static_cast<const T*>(l.x);
    float acc[kRanksPerWarp][kTileRows] = {};
    auto accumulate = [&](int64_t i, const float(&av)[kRanksPerWarp][V]) {
#pragma unroll
      for (int t = 0; t < kTileRows; ++t) {
        if (t >= rows) break;
        float xv[V];
        load_f32<T, V>(x + xoff[t] + i, xv);
#pragma unroll
        for (int r = 0; r < kRanksPerWarp; ++r)
#pragma unroll
          for (int e = 0; e < V; ++e) acc[r][t] = fmaf(av[r][e], xv[e], acc[r][t]);
      }
    };
    int64_t i = kb + lane * V;
#pragma unroll
    for (int st = 0; st < kShrinkPreload; ++st, i += 32 * V)
      if (i < ke) accumulate(i, a0[st]);
    for (; i < ke; i += 32 * V) {
      float av[kRanksPerWarp][V];
      load_a(l, i, av);
      accumulate(i, av);
    }
    // Lane L ends with the warp's sum of acc[L / kTileRows][L % kTileRows]: 31 shuffles for the
    // 32 sums instead of 5 per sum (160).
    return transpose_sum(acc, lane);
  }
};

// The tile's rows' offsets into x (row 0's for the rows past the tile's: never read).
__device__ __forceinline__ void tile_x_offsets(const LoraLaunch& l, const LoraTile* tile, int rows,
                                               int64_t (&xoff)[kTileRows]) {
#pragma unroll
  for (int t = 0; t < kTileRows; ++t)
    xoff[t] = tile != nullptr ? static_cast<int64_t>(tile->row[t < rows ? t : 0]) * l.ldx : 0;
}

// One output column's delta over a tile's rows: acc[t] = sum_j s[t * R + j] * B[j] for j below
// the slot's rank (B past it may hold anything, a NaN times 0 being NaN: masked first), in j
// order, fp32. `b0` holds the first kExpandPreload 16-byte loads of the column's B row `br`; s
// (shared memory) is zero past the tile's rows and the rank. Each row reads its sums as float4s,
// R / 4 shared loads a row instead of R (the expand was bound by shared loads).
template <class T>
__device__ __forceinline__ void expand_column(const T* br, const Vec<T> (&b0)[kExpandPreload],
                                              const float* s, int R, int rank, int rows,
                                              float (&acc)[kTileRows]) {
  constexpr int V = Vec<T>::kN;
  static_assert(V % 4 == 0, "the sums are read as float4s");
#pragma unroll
  for (int t = 0; t < kTileRows; ++t) acc[t] = 0.0f;
  auto accumulate = [&](int j, const Vec<T>& bv) {
    float b[V];
#pragma unroll
    for (int e = 0; e < V; ++e) b[e] = j + e < rank ? to_f32(bv.v[e]) : 0.0f;
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) {
      if (t >= rows) break;
#pragma unroll
      for (int e = 0; e < V; e += 4) {
        const float4 sv = *reinterpret_cast<const float4*>(s + t * R + j + e);
        acc[t] = fmaf(sv.x, b[e], acc[t]);
        acc[t] = fmaf(sv.y, b[e + 1], acc[t]);
        acc[t] = fmaf(sv.z, b[e + 2], acc[t]);
        acc[t] = fmaf(sv.w, b[e + 3], acc[t]);
      }
    }
  };
#pragma unroll
  for (int q = 0; q < kExpandPreload; ++q)
    if (q * V < R) accumulate(q * V, b0[q]);
  for (int j = kExpandPreload * V; j < R; j += V)
    accumulate(j, *reinterpret_cast<const Vec<T>*>(br + j));
}

template <class T>
__device__ __forceinline__ void load_b_head(const T* br, int R, Vec<T> (&b)[kExpandPreload]) {
  constexpr int V = Vec<T>::kN;
#pragma unroll
  for (int q = 0; q < kExpandPreload; ++q)
    if (q * V < R) b[q] = *reinterpret_cast<const Vec<T>*>(br + q * V);
}

}  // namespace sable::ops::cuda::lora_detail
