// The CUDA `lora` / `lora_stacked` ops' kernels: SGMV-style shrink and expand over tiles of rows
// that share an adapter slot (core/ops/lora_batch.h), for up to three projections that read the
// same x (q|k|v, gate|up) in one launch each.
//
// shrink: block (tile, module x block of 16 rank rows, K split). Each warp takes 4 rank rows of
//   A[s] against the tile's rows of x over the split's K range, with 16-byte loads, and writes fp32
//   partial sums tmp[split][tile row][module][j]. Each A row is read once per tile, not once per
//   row, and splitting K gives a decode batch (few tiles) enough blocks to stream A.
// expand: block (tile, 256 output columns of one module). The tile's partials are summed into
//   shared memory [rows][r]; each thread reads its column's B[s, c, :r] (16-byte loads) and adds
//   the dot products into the tile's rows of out (fp32 accumulation, one rounding).
// Everything a launch reads of the batch (tiles, ranks, pool pointers) comes from the step block on
// the device, and the grids depend only on the batch size, the slots and the shapes: a decode
// step with adapters is captured once and replayed with other adapters. Both kernels launch with
// PDL (sable/cuda/launch.cuh) and read the step block and their first adapter weights before they
// wait for their predecessor (see below).
#include <algorithm>

#include "core/ops/cuda/cuda_util.cuh"
#include "core/ops/cuda/kernels.h"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

constexpr int kModules = SABLE_LORA_MODULE_COUNT;
constexpr int kTileRows = kLoraTileRows;
constexpr int kShrinkWarps = 4;
constexpr int kRanksPerWarp = 4;
constexpr int kRanksPerBlock = kShrinkWarps * kRanksPerWarp;
constexpr int kExpandThreads = 256;
constexpr int64_t kSplitK = 512;          // K elements per split before rounding to warp steps
constexpr int64_t kMaxSplits = 32;
constexpr int64_t kMaxSplitBlocks = 4096;  // tiles x splits above which K is split less

struct Plan {
  int vec = 1;  // elements per load of x and A
  int32_t splits = 1;
  int64_t k_chunk = 0;
  int32_t rank_blocks = 1;
  int32_t col_block[kLoraMaxStacked + 1] = {};  // expand: first blockIdx.y of each module
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T>
Plan make_plan(const LoraLaunch& l) {
  Plan p;
  constexpr int v = Vec<T>::kN;
  p.vec = l.k % v == 0 && l.ldx % v == 0 && aligned16(l.x) ? v : 1;
  int64_t splits = std::clamp<int64_t>(ceil_div(l.k, kSplitK), 1, kMaxSplits);
  while (splits > 1 && l.max_tiles * splits > kMaxSplitBlocks) splits = ceil_div(splits, 2);
  const int64_t step = 32 * p.vec;
  p.k_chunk = ceil_div(ceil_div(l.k, splits), step) * step;
  p.splits = static_cast<int32_t>(ceil_div(l.k, p.k_chunk));
  p.rank_blocks = static_cast<int32_t>(ceil_div(l.rank_stride, kRanksPerBlock));
  for (int i = 0; i < l.count; ++i)
    p.col_block[i + 1] = p.col_block[i] + static_cast<int32_t>(ceil_div(l.n[i], kExpandThreads));
  return p;
}

template <class T, int V>
__device__ __forceinline__ void load_f32(const T* p, float (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = to_f32(*p);
  } else {
    static_assert(V == Vec<T>::kN, "vector loads are 16 bytes");
    const Vec<T> v = *reinterpret_cast<const Vec<T>*>(p);
#pragma unroll
    for (int i = 0; i < V; ++i) out[i] = to_f32(v.v[i]);
  }
}

// The sums over a warp's 32 lanes of 32 values each, one per lane: at each halving step a lane keeps
// the half of its values its lane bit selects and adds the partner's copy of that half, so lane L
// ends with the full sum of value L (row-major over acc).
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

// Both kernels read the step block (tiles, ranks, pool pointers) and the adapters' weights before
// griddepcontrol.wait: the host uploads the block before the step's first kernel and the pools
// before any step that uses them, and no kernel writes either, so only x, the partials and the
// outputs wait for the predecessor. The metadata chain (tile count -> tile -> rank -> weights, ~5
// dependent loads) and the first weight loads then overlap the predecessor's tail. Every block
// still waits before it exits, so a kernel never completes before its predecessor has.
constexpr int kShrinkPreload = 2;  // K steps of A in registers before the wait (kSplitK = 2 steps)
constexpr int kExpandPreload = 4;  // 16-byte loads of a B row before the wait (rank 32 in bf16)

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

template <class T, int V>
__global__ void __launch_bounds__(kShrinkWarps * 32)
    lora_shrink(LoraLaunch l, Plan p, float* __restrict__ tmp) {
  const int tile_i = static_cast<int>(blockIdx.x);
  const int mi = static_cast<int>(blockIdx.y) / p.rank_blocks;
  const int rb = static_cast<int>(blockIdx.y) - mi * p.rank_blocks;
  const int module = l.module[mi];
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int j0 = rb * kRanksPerBlock + warp * kRanksPerWarp;
  const TileRef ref = tile_ref(l, l.view.a, tile_i, module);
  const T* a = static_cast<const T*>(ref.w);
  const LoraTile* tile = ref.tile;
  const int slot = ref.slot, rows = ref.rows, rank = ref.rank;
  const bool live = j0 < rank;  // warp-uniform; no block barrier below
  const int64_t kb = static_cast<int64_t>(blockIdx.z) * p.k_chunk;
  const int64_t ke = min(l.k, kb + p.k_chunk);
  const T* arow = live ? a + (static_cast<int64_t>(slot) * l.rank_stride + j0) * l.k : nullptr;
  auto load_a = [&](int64_t i, float (&av)[kRanksPerWarp][V]) {
#pragma unroll
    for (int r = 0; r < kRanksPerWarp; ++r) {
      if (j0 + r < rank) {
        load_f32<T, V>(arow + r * l.k + i, av[r]);
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) av[r][e] = 0.0f;
      }
    }
  };
  float a0[kShrinkPreload][kRanksPerWarp][V];
#pragma unroll
  for (int st = 0; st < kShrinkPreload; ++st) {
    const int64_t i = kb + lane * V + st * 32 * V;
    if (live && i < ke) load_a(i, a0[st]);
  }
  int64_t xoff[kTileRows];
#pragma unroll
  for (int t = 0; t < kTileRows; ++t)
    xoff[t] = live ? static_cast<int64_t>(tile->row[t < rows ? t : 0]) * l.ldx : 0;
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (!live) return;
  const T* x = static_cast<const T*>(l.x);
  float acc[kRanksPerWarp][kTileRows] = {};
  auto accumulate = [&](int64_t i, const float (&av)[kRanksPerWarp][V]) {
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
    load_a(i, av);
    accumulate(i, av);
  }
  const int64_t row_stride = static_cast<int64_t>(l.count) * l.rank_stride;
  float* dst = tmp + (static_cast<int64_t>(blockIdx.z) * l.max_tiles * kTileRows +
                      static_cast<int64_t>(tile_i) * kTileRows) * row_stride +
               static_cast<int64_t>(mi) * l.rank_stride + j0;
  // Lane L ends with the warp's sum of acc[L / kTileRows][L % kTileRows]: 31 shuffles for the
  // 32 sums instead of 5 per sum (160).
  const float sum = transpose_sum(acc, lane);
  const int r = lane / kTileRows, t = lane % kTileRows;
  if (t < rows && j0 + r < rank) dst[t * row_stride + r] = sum;
}

template <class T>
__global__ void __launch_bounds__(kExpandThreads)
    lora_expand(LoraLaunch l, Plan p, const float* __restrict__ tmp) {
  extern __shared__ float s[];  // [kTileRows][rank rounded up to V]
  constexpr int V = Vec<T>::kN;
  const int tile_i = static_cast<int>(blockIdx.x);
  int mi = 0;
  while (mi + 1 < l.count && static_cast<int>(blockIdx.y) >= p.col_block[mi + 1]) ++mi;
  const int module = l.module[mi];
  const TileRef ref = tile_ref(l, l.view.b, tile_i, module);
  const T* b = static_cast<const T*>(ref.w);
  const LoraTile* tile = ref.tile;
  const int slot = ref.slot, rows = ref.rows, rank = ref.rank;
  const int rank_v = (rank + V - 1) / V * V;  // <= rank_stride (a multiple of kLoraRankAlign)
  const int64_t c =
      static_cast<int64_t>(static_cast<int>(blockIdx.y) - p.col_block[mi]) * kExpandThreads +
      threadIdx.x;
  const bool col = rank > 0 && c < l.n[mi];
  const T* brow = col ? b + (static_cast<int64_t>(slot) * l.n[mi] + c) * l.rank_stride : nullptr;
  float b0[kExpandPreload][V];
#pragma unroll
  for (int q = 0; q < kExpandPreload; ++q)
    if (col && q * V < rank_v) load_f32<T, V>(brow + q * V, b0[q]);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (rank <= 0) return;  // block-uniform
  const int64_t row_stride = static_cast<int64_t>(l.count) * l.rank_stride;
  const int64_t split_stride = l.max_tiles * kTileRows * row_stride;
  for (int idx = static_cast<int>(threadIdx.x); idx < kTileRows * rank_v; idx += kExpandThreads) {
    const int t = idx / rank_v, j = idx - t * rank_v;
    float v = 0.0f;
    if (t < rows && j < rank) {
      const float* src = tmp + (static_cast<int64_t>(tile_i) * kTileRows + t) * row_stride +
                         static_cast<int64_t>(mi) * l.rank_stride + j;
      for (int z = 0; z < p.splits; ++z) v += src[z * split_stride];
    }
    s[idx] = v;
  }
  __syncthreads();
  if (!col) return;
  float acc[kTileRows] = {};
  auto accumulate = [&](int j, const float (&bv)[V]) {
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) {
      if (t >= rows) break;
#pragma unroll
      for (int e = 0; e < V; ++e) acc[t] = fmaf(s[t * rank_v + j + e], bv[e], acc[t]);
    }
  };
#pragma unroll
  for (int q = 0; q < kExpandPreload; ++q)
    if (q * V < rank_v) accumulate(q * V, b0[q]);
  for (int j = kExpandPreload * V; j < rank_v; j += V) {
    float bv[V];
    load_f32<T, V>(brow + j, bv);
    accumulate(j, bv);
  }
  T* out = static_cast<T*>(l.out[mi]);
#pragma unroll
  for (int t = 0; t < kTileRows; ++t) {
    if (t >= rows) break;
    T* o = out + static_cast<int64_t>(tile->row[t]) * l.ldo[mi] + c;
    *o = from_f32<T>(to_f32(*o) + acc[t]);
  }
}

bool valid(const LoraLaunch& l) {
  if (l.count < 1 || l.count > kLoraMaxStacked || l.k <= 0 || l.rank_stride <= 0) return false;
  if (l.rank_stride % kLoraRankAlign != 0) return false;
  for (int i = 0; i < l.count; ++i)
    if (l.module[i] < 0 || l.module[i] >= kModules || l.n[i] <= 0 || l.out[i] == nullptr)
      return false;
  return true;
}

}  // namespace

size_t lora_scratch_floats(const LoraLaunch& l, int32_t dtype) {
  size_t floats = 0;
  if (l.max_tiles <= 0 || !valid(l)) return 0;
  dispatch_float(dtype, [&](auto tag) {
    const Plan p = make_plan<decltype(tag)>(l);
    floats = static_cast<size_t>(p.splits) * static_cast<size_t>(l.max_tiles) * kTileRows *
             static_cast<size_t>(l.count) * static_cast<size_t>(l.rank_stride);
  });
  return floats;
}

bool lora_stacked(const LoraLaunch& l, int32_t dtype, float* scratch, void* stream) {
  if (!valid(l)) return false;
  if (l.max_tiles <= 0) return true;
  const cudaStream_t st = as_stream(stream);
  bool ok = false;
  return dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const Plan p = make_plan<T>(l);
    const dim3 sgrid(static_cast<unsigned>(l.max_tiles),
                     static_cast<unsigned>(l.count * p.rank_blocks),
                     static_cast<unsigned>(p.splits));
    auto shrink = p.vec == 1 ? lora_shrink<T, 1> : lora_shrink<T, Vec<T>::kN>;
    ok = sable::cuda::launch(shrink, sgrid, kShrinkWarps * 32, 0, st, l, p, scratch) == cudaSuccess;
    const dim3 egrid(static_cast<unsigned>(l.max_tiles), static_cast<unsigned>(p.col_block[l.count]));
    const size_t smem = static_cast<size_t>(kTileRows) * l.rank_stride * sizeof(float);
    ok = ok && sable::cuda::launch(lora_expand<T>, egrid, kExpandThreads, smem, st, l, p,
                                   static_cast<const float*>(scratch)) == cudaSuccess;
  }) && ok;
}

}  // namespace sable::ops::cuda
