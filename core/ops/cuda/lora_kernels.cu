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

#include "core/ops/cuda/lora_common.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

using namespace lora_detail;

constexpr int kReduceThreads = 128;
// Words of the delta form's bit per row (zero_rest).
constexpr int kZeroWords = static_cast<int>(kLoraZeroMaxRows / 32);

// The delta form's zero_rest: covered[w] bit b set where row 32 w + b is a row of one of the
// first num_tiles tiles (none when num_tiles is 0). Block-wide, between two barriers; covered has
// kZeroWords words.
__device__ __forceinline__ void gather_covered_rows(const LoraTile* tiles, int num_tiles,
                                                    uint32_t* covered) {
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  for (int w = tid; w < kZeroWords; w += threads) covered[w] = 0;
  __syncthreads();
  for (int e = tid; e < num_tiles * kTileRows; e += threads) {
    const LoraTile& tile = tiles[e / kTileRows];
    if (e % kTileRows < tile.rows) {
      const int row = tile.row[e % kTileRows];
      atomicOr(&covered[row / 32], 1u << (row % 32));
    }
  }
  __syncthreads();
}

// Zeros column c of a [rows, n] delta in the rows whose covered bit is clear.
__device__ __forceinline__ void zero_uncovered_rows(float* delta, int64_t n, int64_t c,
                                                    int64_t rows, const uint32_t* covered) {
  for (int w = 0; w * 32 < rows; ++w) {
    const int valid = min(32, static_cast<int>(rows) - w * 32);
    uint32_t rest = ~covered[w] & (valid == 32 ? ~0u : (1u << valid) - 1);
    for (; rest != 0; rest &= rest - 1)
      delta[static_cast<int64_t>(w * 32 + __ffs(rest) - 1) * n + c] = 0.0f;
  }
}

// Both kernels read the step block (tiles, ranks, pool pointers) and the adapters' weights before
// griddepcontrol.wait: the host uploads the block before the step's first kernel and the pools
// before any step that uses them, and no kernel writes either, so only x, the partials and the
// outputs wait for the predecessor. The metadata chain (tile count -> tile -> rank -> weights, ~5
// dependent loads) and the first weight loads then overlap the predecessor's tail. Every block
// still waits before it exits, so a kernel never completes before its predecessor has.

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
  ShrinkWarp<T, V> w;
  w.init(l, ref, j0, static_cast<int64_t>(blockIdx.z) * p.k_chunk, p.k_chunk);
  w.preload(l, lane);
  int64_t xoff[kTileRows];
  tile_x_offsets(l, w.arow != nullptr ? ref.tile : nullptr, ref.rows, xoff);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  if (w.arow == nullptr) return;  // warp-uniform; no block barrier below
  const int rows = ref.rows, rank = ref.rank;
  const float sum = w.sums(l, xoff, rows, lane);
  const int64_t row_stride = static_cast<int64_t>(l.count) * l.rank_stride;
  float* dst = tmp +
               (static_cast<int64_t>(blockIdx.z) * l.max_tiles * kTileRows +
                static_cast<int64_t>(tile_i) * kTileRows) *
                   row_stride +
               static_cast<int64_t>(mi) * l.rank_stride + j0;
  const int r = lane / kTileRows, t = lane % kTileRows;
  if (t < rows && j0 + r < rank) dst[t * row_stride + r] = sum;
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
  for (int idx = static_cast<int>(threadIdx.x); idx < kTileRows * row_stride;
       idx += kReduceThreads) {
    const int t = static_cast<int>(idx / row_stride), rem = static_cast<int>(idx % row_stride);
    const int mi = rem / R, j = rem - mi * R, module = l.module[mi];
    const bool pool = l.view.a[l.layer * kModules + module] != nullptr;
    const int rank = pool ? min(l.view.slot_rank[slot * kModules + module], R) : 0;
    float v = 0.0f;
    if (t < rows && j < rank)
      v = sum_splits(p.splits, [&](int z) { return base[idx + z * split_stride]; });
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
  if (col && mine > 0) load_b_head(b_row(0), R, b0);
  // zero_rest: the first tile group's blocks also zero their columns' rows outside every tile (a
  // bit per row of the tiles' rows, gathered before the wait; the tiles' own rows are written
  // below, zeros where the slot's rank is 0). Without a pool no row is written below: all zero.
  __shared__ uint32_t covered[kZeroWords];
  const bool zero = kDelta && l.zero_rest && g == 0;  // block-uniform
  if (zero) gather_covered_rows(tiles, pool == nullptr ? 0 : num_tiles, covered);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  float* delta = kDelta ? l.delta + l.delta_offset(mi) : nullptr;
  if (zero && col) zero_uncovered_rows(delta, l.n[mi], c, l.rows, covered);
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
    if (i + 1 < mine) load_b_head(b_row(i + 1), R, bn);
    const float* st = s + i * kTileRows * R;  // zero past the slot's rank and the tile's rows
    const int rank = min(l.view.slot_rank[tile.slot * kModules + module], R);
    float acc[kTileRows];
    expand_column(br, b0, st, R, rank, rows, acc);
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

// The launch's shapes the kernels take: 1..kLoraMaxStacked modules with outputs, K, a rank stride
// that is a multiple of kLoraRankAlign.
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
