// The CUDA `lora` / `lora_stacked` ops' kernels: SGMV-style shrink and expand over tiles of rows
// that share an adapter slot (core/ops/lora_batch.h), for up to three projections that read the
// same x (q|k|v, gate|up) in one launch each.
//
// shrink: block (tile, module x block of 16 rank rows, K split). Each warp takes 4 rank rows of
//   A[s] against the tile's rows of x over the split's K range, with 16-byte loads, and writes fp32
//   partial sums tmp[split][tile row][module][j]. Each A row is read once per tile, not once per
//   row, and splitting K gives a decode batch (few tiles) enough blocks to stream A.
// reduce: block per tile: the K splits' partials summed into split 0's slice, zero past the
//   tile's rows and the slot's rank (runs after the shrink on its stream).
// expand: block (256 output columns of one module, tile group g): the tiles g, g + G, ... (G
//   groups sized so the grid is about one wave). Their sums are copied into shared memory
//   [tile][rows][r]; each thread reads its column's B[s, c, :R] per tile (16-byte loads, masked
//   past the slot's rank; the next tile's issued before this tile's math) and adds the dot
//   products into the tile's rows of out (fp32 accumulation, one rounding), the next tile's old
//   outputs loaded before this one's stores. Its delta form writes the sums to an fp32 buffer
//   (with zero_rest, zeros to the rows outside every tile too), and apply_delta adds that buffer
//   into out later (the expand beside the base GEMM, lora_ops.cpp).
// Everything a launch reads of the batch (tiles, ranks, pool pointers) comes from the step block on
// the device, and the grids depend only on the batch size, the slots and the shapes: a decode
// step with adapters is captured once and replayed with other adapters. Both kernels launch with
// PDL (sable/cuda/launch.cuh) and read the step block and their first adapter weights before they
// wait for their predecessor (see below).
#include <algorithm>
#include <cstdlib>

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
constexpr int kReduceThreads = 128;
constexpr int kExpandThreads = 256;
// The expand's bit per delta row (zero_rest).
constexpr int kZeroWords = static_cast<int>(kLoraZeroMaxRows / 32);
constexpr int64_t kExpandSmemBytes = 32 << 10;  // most shared memory an expand block's sums take
constexpr int64_t kSplitK = 512;          // K elements per split before rounding to warp steps
constexpr int64_t kMaxSplits = 32;
constexpr int64_t kMaxSplitBlocks = 4096;  // tiles x splits above which K is split less

struct Plan {
  int vec = 1;  // elements per load of x and A
  int32_t splits = 1;
  int64_t k_chunk = 0;
  int32_t rank_blocks = 1;
  int32_t col_block[kLoraMaxStacked + 1] = {};  // expand: first blockIdx.x of each module
  int32_t tile_groups = 1;  // expand: gridDim.y; block (x, g) takes tiles g, g + G, ...
  int32_t group_tiles = 1;  // expand: most tiles a block takes (max_tiles / G rounded up)
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// K elements per shrink split: kSplitK, or SABLE_LORA_SPLIT_K (a multiple of 256; for A/B runs).
int64_t split_k() {
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
  const int64_t groups = std::max(ceil_div(2 * sm_count(), p.col_block[l.count]), ceil_div(tiles, cap));
  p.tile_groups = static_cast<int32_t>(std::clamp<int64_t>(groups, 1, tiles));
  p.group_tiles = static_cast<int32_t>(ceil_div(tiles, p.tile_groups));
  return p;
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
constexpr int kExpandPreload = 2;  // 16-byte loads of a B row before the wait (rank 16 in bf16)

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
    shrink_kernel(LoraLaunch l, Plan p, float* __restrict__ tmp) {
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

// The K splits' partials at src, src + split_stride, ... summed in four independent chains (the
// split loads are in flight together), split z into chain z % 4 and the splits past the last
// whole group of four into chain 0.
__device__ __forceinline__ float sum_splits(const float* src, int splits, int64_t split_stride) {
  float c[4] = {};
  int z = 0;
  for (; z + 4 <= splits; z += 4)
#pragma unroll
    for (int u = 0; u < 4; ++u) c[u] += src[(z + u) * split_stride];
  for (; z < splits; ++z) c[0] += src[z * split_stride];
  return (c[0] + c[1]) + (c[2] + c[3]);
}

// The split partials of each live tile summed into split 0's slice, zero past the tile's rows,
// the slot's rank and where a module has no pool (the shrink wrote nothing there): what the
// expand copies into shared memory as is. It runs after the shrink on the shrink's stream, off
// the critical path when the shrink is forked (lora_fork.h). In place: each element is read and
// written by one thread.
__global__ void __launch_bounds__(kReduceThreads) reduce_kernel(LoraLaunch l, Plan p,
                                                                 float* __restrict__ tmp) {
  const int tile_i = static_cast<int>(blockIdx.x);
  const int num_tiles = *l.view.num_tiles;
  const LoraTile* tile = &l.view.tiles[tile_i];
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (tile_i >= num_tiles) return;
  const int R = l.rank_stride, rows = tile->rows, slot = tile->slot;
  const int64_t row_stride = static_cast<int64_t>(l.count) * R;
  const int64_t split_stride = l.max_tiles * kTileRows * row_stride;
  float* base = tmp + static_cast<int64_t>(tile_i) * kTileRows * row_stride;
  for (int idx = static_cast<int>(threadIdx.x); idx < kTileRows * row_stride; idx += kReduceThreads) {
    const int t = static_cast<int>(idx / row_stride), rem = static_cast<int>(idx % row_stride);
    const int mi = rem / R, j = rem - mi * R, module = l.module[mi];
    const bool pool = l.view.a[l.layer * kModules + module] != nullptr;
    const int rank = pool ? min(l.view.slot_rank[slot * kModules + module], R) : 0;
    float v = 0.0f;
    if (t < rows && j < rank) v = sum_splits(base + idx, p.splits, split_stride);
    base[idx] = v;
  }
}

// kDelta: the sums go to l.delta (module mi's [rows, n] block) instead of into the outs, and the
// old outputs are not read (lora_expand_to_delta).
template <class T, bool kDelta>
__global__ void __launch_bounds__(kExpandThreads, 3)
    expand_kernel(LoraLaunch l, Plan p, const float* __restrict__ tmp) {
  extern __shared__ float4 s4[];  // [p.group_tiles][kTileRows][rank_stride] floats: the sums
  float* s = reinterpret_cast<float*>(s4);
  constexpr int V = Vec<T>::kN;
  static_assert(V % 4 == 0, "the sums are read as float4s");
  const int R = l.rank_stride;  // a multiple of kLoraRankAlign (8), so of V
  int mi = 0;
  while (mi + 1 < l.count && static_cast<int>(blockIdx.x) >= p.col_block[mi + 1]) ++mi;
  const int module = l.module[mi];
  const int64_t c =
      static_cast<int64_t>(static_cast<int>(blockIdx.x) - p.col_block[mi]) * kExpandThreads +
      threadIdx.x;
  const bool col = c < l.n[mi];
  // This block's tiles: g, g + G, ... below *num_tiles. The tile count, the pool and the tiles are
  // independent loads, and B's address needs only the pool and the slot: two round trips before
  // B is in flight. B's columns past a slot's rank are masked, not skipped, so its loads need not
  // wait for the rank.
  const int g = static_cast<int>(blockIdx.y), G = static_cast<int>(gridDim.y);
  const int num_tiles = *l.view.num_tiles;
  const T* pool = static_cast<const T*>(l.view.b[l.layer * kModules + module]);
  const int mine = pool == nullptr || num_tiles <= g ? 0 : min((num_tiles - g + G - 1) / G,
                                                               p.group_tiles);
  const LoraTile* tiles = l.view.tiles;
  auto b_row = [&](int i) {
    return pool + (static_cast<int64_t>(tiles[g + i * G].slot) * l.n[mi] + c) * R;
  };
  Vec<T> b0[kExpandPreload];
  if (col && mine > 0) {
    const T* br = b_row(0);
#pragma unroll
    for (int q = 0; q < kExpandPreload; ++q)
      if (q * V < R) b0[q] = *reinterpret_cast<const Vec<T>*>(br + q * V);
  }
  // zero_rest: the first tile group's blocks also zero their columns' rows outside every tile (a
  // bit per row of the tiles' rows, gathered before the wait; the tiles' own rows are written
  // below, zeros where the slot's rank is 0). Without a pool no row is written below: all zero.
  __shared__ uint32_t covered[kZeroWords];
  const bool zero = kDelta && l.zero_rest && g == 0;  // block-uniform
  if (zero) {
    for (int w = static_cast<int>(threadIdx.x); w < kZeroWords; w += kExpandThreads) covered[w] = 0;
    __syncthreads();
    const int entries = pool == nullptr ? 0 : num_tiles * kTileRows;
    for (int e = static_cast<int>(threadIdx.x); e < entries; e += kExpandThreads) {
      const LoraTile& tile = tiles[e / kTileRows];
      if (e % kTileRows < tile.rows) {
        const int row = tile.row[e % kTileRows];
        atomicOr(&covered[row / 32], 1u << (row % 32));
      }
    }
    __syncthreads();
  }
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  float* delta = kDelta ? l.delta + l.delta_offset(mi) : nullptr;
  if (zero && col) {
    for (int w = 0; w * 32 < l.rows; ++w) {
      const int valid = min(32, static_cast<int>(l.rows) - w * 32);
      uint32_t rest = ~covered[w] & (valid == 32 ? ~0u : (1u << valid) - 1);
      for (; rest != 0; rest &= rest - 1)
        delta[static_cast<int64_t>(w * 32 + __ffs(rest) - 1) * l.n[mi] + c] = 0.0f;
    }
  }
  if (mine == 0) return;  // block-uniform
  T* out = static_cast<T*>(l.out[mi]);
  const int64_t ldo = l.ldo[mi];
  // The first tile's old outputs are in flight while the partial sums are gathered.
  float old[kTileRows];
  auto load_old = [&](const LoraTile& tile) {
#pragma unroll
    for (int t = 0; t < kTileRows; ++t)
      old[t] = !kDelta && col && t < tile.rows
                   ? to_f32(out[static_cast<int64_t>(tile.row[t]) * ldo + c])
                   : 0.0f;
  };
  load_old(tiles[g]);
  // The tiles' sums (split 0's slice after the reduce: zero past the tile's rows and the slot's
  // rank).
  const int64_t row_stride = static_cast<int64_t>(l.count) * R;
  const int r4 = R / 4;
  for (int idx = static_cast<int>(threadIdx.x); idx < mine * kTileRows * r4; idx += kExpandThreads) {
    const int i = idx / (kTileRows * r4), t = idx / r4 % kTileRows, j4 = idx % r4;
    s4[idx] = *reinterpret_cast<const float4*>(
        tmp + (static_cast<int64_t>(g + i * G) * kTileRows + t) * row_stride +
        static_cast<int64_t>(mi) * R + j4 * 4);
  }
  __syncthreads();
  if (!col) return;
  for (int i = 0; i < mine; ++i) {
    const LoraTile& tile = tiles[g + i * G];
    const int rows = tile.rows;
    const T* br = b_row(i);
    // The next tile's first B loads go out before this tile's math.
    Vec<T> bn[kExpandPreload];
    if (i + 1 < mine) {
      const T* nb = b_row(i + 1);
#pragma unroll
      for (int q = 0; q < kExpandPreload; ++q)
        if (q * V < R) bn[q] = *reinterpret_cast<const Vec<T>*>(nb + q * V);
    }
    const float* st = s + i * kTileRows * R;  // zero past the slot's rank and the tile's rows
    // Rows past the tile's and ranks past the slot's have s = 0, but B there may hold anything
    // (a NaN times 0 is NaN): B is masked by the rank before it is used.
    const int rank = min(l.view.slot_rank[tile.slot * kModules + module], R);
    float acc[kTileRows] = {};
    // One 16-byte B load (V ranks) at a time; each row reads its V sums as float4s, so a column
    // costs R / 4 shared loads a row instead of R (the expand was bound by shared loads).
    auto accumulate = [&](int j, const Vec<T>& bv) {
      float b[V];
#pragma unroll
      for (int e = 0; e < V; ++e) b[e] = j + e < rank ? to_f32(bv.v[e]) : 0.0f;
#pragma unroll
      for (int t = 0; t < kTileRows; ++t) {
        if (t >= rows) break;
#pragma unroll
        for (int e = 0; e < V; e += 4) {
          const float4 sv = *reinterpret_cast<const float4*>(st + t * R + j + e);
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
#pragma unroll
    for (int q = 0; q < kExpandPreload; ++q) b0[q] = bn[q];
    float cur[kTileRows];
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) cur[t] = old[t];
    if (i + 1 < mine) load_old(tiles[g + (i + 1) * G]);  // the next tile's, before this one's stores
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) {
      if (t >= rows) break;
      if constexpr (kDelta)
        delta[static_cast<int64_t>(tile.row[t]) * l.n[mi] + c] = acc[t];
      else
        out[static_cast<int64_t>(tile.row[t]) * ldo + c] = from_f32<T>(cur[t] + acc[t]);
    }
  }
}

// out += delta over the same (column block, tile group) grid as the expand: each thread its
// column of its tiles' rows, one rounding of old + sum as in expand_kernel.
template <class T>
__global__ void __launch_bounds__(kExpandThreads) apply_delta_kernel(LoraLaunch l, Plan p) {
  int mi = 0;
  while (mi + 1 < l.count && static_cast<int>(blockIdx.x) >= p.col_block[mi + 1]) ++mi;
  const int64_t c =
      static_cast<int64_t>(static_cast<int>(blockIdx.x) - p.col_block[mi]) * kExpandThreads +
      threadIdx.x;
  const int g = static_cast<int>(blockIdx.y), G = static_cast<int>(gridDim.y);
  const int num_tiles = *l.view.num_tiles;
  const bool pool = l.view.b[l.layer * kModules + l.module[mi]] != nullptr;
  const int mine = !pool || num_tiles <= g ? 0 : min((num_tiles - g + G - 1) / G, p.group_tiles);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (mine == 0 || c >= l.n[mi]) return;
  T* out = static_cast<T*>(l.out[mi]);
  const int64_t ldo = l.ldo[mi];
  const float* delta = l.delta + l.delta_offset(mi);
  for (int i = 0; i < mine; ++i) {
    const LoraTile& tile = l.view.tiles[g + i * G];
    float old[kTileRows], d[kTileRows];
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) {
      const int64_t row = t < tile.rows ? tile.row[t] : 0;
      old[t] = t < tile.rows ? to_f32(out[row * ldo + c]) : 0.0f;
      d[t] = t < tile.rows ? delta[row * l.n[mi] + c] : 0.0f;
    }
#pragma unroll
    for (int t = 0; t < kTileRows; ++t)
      if (t < tile.rows)
        out[static_cast<int64_t>(tile.row[t]) * ldo + c] = from_f32<T>(old[t] + d[t]);
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

namespace {
// Validates l, then calls f(tag, plan) with the dtype's element type as tag; true when there is
// nothing to launch (no tiles) or f's launches succeeded.
template <class F>
bool with_plan(const LoraLaunch& l, int32_t dtype, F&& f) {
  if (!valid(l)) return false;
  if (l.max_tiles <= 0) return true;
  bool ok = false;
  return dispatch_float(dtype, [&](auto tag) { ok = f(tag, make_plan<decltype(tag)>(l)); }) && ok;
}
}  // namespace

bool lora_shrink(const LoraLaunch& l, int32_t dtype, float* scratch, void* stream) {
  return with_plan(l, dtype, [&](auto tag, const Plan& p) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>(l.max_tiles), static_cast<unsigned>(l.count * p.rank_blocks),
                    static_cast<unsigned>(p.splits));
    auto shrink = p.vec == 1 ? shrink_kernel<T, 1> : shrink_kernel<T, Vec<T>::kN>;
    return sable::cuda::launch(shrink, grid, kShrinkWarps * 32, 0, as_stream(stream), l, p,
                               scratch) == cudaSuccess &&
           sable::cuda::launch(reduce_kernel, dim3(static_cast<unsigned>(l.max_tiles)),
                               kReduceThreads, 0, as_stream(stream), l, p, scratch) == cudaSuccess;
  });
}

namespace {
template <bool kDelta>
bool launch_expand(const LoraLaunch& l, int32_t dtype, const float* scratch, void* stream) {
  return with_plan(l, dtype, [&](auto tag, const Plan& p) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>(p.col_block[l.count]), static_cast<unsigned>(p.tile_groups));
    const size_t smem =
        static_cast<size_t>(p.group_tiles) * kTileRows * l.rank_stride * sizeof(float);
    return sable::cuda::launch(expand_kernel<T, kDelta>, grid, kExpandThreads, smem,
                               as_stream(stream), l, p, scratch) == cudaSuccess;
  });
}
}  // namespace

bool lora_expand(const LoraLaunch& l, int32_t dtype, const float* scratch, void* stream) {
  return launch_expand<false>(l, dtype, scratch, stream);
}

size_t lora_delta_floats(const LoraLaunch& l) {
  if (!valid(l) || l.rows <= 0) return 0;
  return static_cast<size_t>(l.delta_offset(l.count));
}

bool lora_expand_to_delta(const LoraLaunch& l, int32_t dtype, const float* scratch, void* stream) {
  if (l.delta == nullptr || l.rows <= 0 || (l.zero_rest && l.rows > kLoraZeroMaxRows)) return false;
  return launch_expand<true>(l, dtype, scratch, stream);
}

bool lora_apply_delta(const LoraLaunch& l, int32_t dtype, void* stream) {
  if (l.delta == nullptr || l.rows <= 0) return false;
  return with_plan(l, dtype, [&](auto tag, const Plan& p) {
    using T = decltype(tag);
    const dim3 grid(static_cast<unsigned>(p.col_block[l.count]),
                    static_cast<unsigned>(p.tile_groups));
    return sable::cuda::launch(apply_delta_kernel<T>, grid, kExpandThreads, 0, as_stream(stream), l,
                               p) == cudaSuccess;
  });
}

}  // namespace sable::ops::cuda
