// The CUDA `lora` / `lora_stacked` ops' kernel: SGMV-style shrink and expand over tiles of rows
// that share an adapter slot (core/ops/lora_batch.h), for up to three projections that read the
// same x (q|k|v, gate|up), in ONE launch per call.
//
// Why one launch: at decode sizes the two phases move a few MB and each costs its latency chain,
// not its bandwidth (bench/NOTES.md v10: 9-24 us a kernel, the same with 1 or 16 adapters). A
// second launch per call added a launch gap, a PDL handoff and a re-sum of K-split partials.
//
// The grid is 1-D: the shrink blocks first, then the expand blocks.
// shrink: block (tile, module, 4 rank rows). Its 8 warps split K; each warp dots 4 rank rows of
//   A[s] with the tile's rows of x (16-byte loads) and reduces its 32 sums with one transpose;
//   the block adds its warps' sums in a fixed order (deterministic) and writes the tile's final
//   s[tile][row][module][j]. Then it counts itself done (a release: fence, then atomic add).
// expand: block (256 output columns of one module, a group of tiles). It waits until every
//   shrink block of the batch's live tiles is done (acquire: spin on the counter, then fence),
//   then for each of its tiles reads s into shared memory and adds s . B[s, c, :r] into the
//   tile's rows of out (fp32 accumulation, one rounding).
// The expand blocks come after every shrink block in the grid, and blocks are dispatched in
// index order, so a spinning expand block never holds a slot a shrink block still needs. The
// counters (done, exited) live in the step block's tile-count word group (uploaded as zeros before
// each forward); the last expand block to leave also resets them, so a replay that skipped the
// upload still starts from zero.
// Everything a launch reads of the batch (tiles, ranks, pool pointers) comes from the step block on
// the device, and the grid depends only on the batch size, the slots and the shapes: a decode step
// with adapters is captured once and replayed with other adapters. The kernel launches with PDL
// (sable/cuda/launch.cuh): the step block and the first adapter weights are read before it waits
// for its predecessor; x, s, out and the counters after.
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
constexpr int kRanksPerBlock = 4;  // shrink: rank rows per block (each warp takes all four)
constexpr int kColsPerThread = 2;  // expand: columns c, c + 256, ... of one module per thread
constexpr int kExpandCols = kThreads * kColsPerThread;
constexpr int kShrinkPreload = 2;  // K steps of A in registers before the PDL wait
constexpr int kBAhead = 2;  // expand: 16-byte loads of a B row issued with the outputs (rank 16, bf16)
constexpr int kTilesPerExpandBlock = 8;  // most tiles one expand block loops over (large batches)
constexpr int kMinTileGroups = 8;        // decode: a tile group per live tile, up to this many

struct Plan {
  int vec = 1;  // elements per load of x and A
  int64_t k_warp = 0;  // K elements per warp (a multiple of 32 * vec)
  int32_t rank_blocks = 1;
  int32_t tile_groups = 1;  // expand: blocks per column block, each looping over its tiles
  int64_t shrink_blocks = 0;
  int32_t col_block[kLoraMaxStacked + 1] = {};  // expand: first column block of each module
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <class T>
Plan make_plan(const LoraLaunch& l) {
  Plan p;
  constexpr int v = Vec<T>::kN;
  p.vec = l.k % v == 0 && l.ldx % v == 0 && aligned16(l.x) ? v : 1;
  const int64_t step = 32 * p.vec;
  p.k_warp = ceil_div(ceil_div(l.k, kWarps), step) * step;
  p.rank_blocks = static_cast<int32_t>(ceil_div(l.rank_stride, kRanksPerBlock));
  p.tile_groups = static_cast<int32_t>(std::max<int64_t>(
      std::min<int64_t>(l.max_tiles, kMinTileGroups), ceil_div(l.max_tiles, kTilesPerExpandBlock)));
  p.shrink_blocks = l.max_tiles * l.count * p.rank_blocks;
  for (int i = 0; i < l.count; ++i)
    p.col_block[i + 1] = p.col_block[i] + static_cast<int32_t>(ceil_div(l.n[i], kExpandCols));
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
__device__ __forceinline__ float transpose_sum(float (&acc)[kRanksPerBlock][kTileRows], int lane) {
  static_assert(kRanksPerBlock * kTileRows == 32, "one value per lane");
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

// One tile's adapter for one module, from the step block: the slot's weights in `pools` (the A or
// B pool of each projection), its rows and its rank. w == nullptr (rank 0) where the projection
// has no pool; tile == nullptr past the step's tiles.
struct TileRef {
  const void* w = nullptr;
  const LoraTile* tile = nullptr;
  int slot = 0, rows = 0, rank = 0;
};

__device__ __forceinline__ TileRef tile_ref(const LoraLaunch& l, const void* const* pools,
                                            int tile_i, int module) {
  TileRef r;
  if (tile_i >= *l.view.num_tiles) return r;
  r.tile = &l.view.tiles[tile_i];
  r.w = pools[l.layer * kModules + module];
  if (r.w == nullptr) return r;
  r.slot = r.tile->slot;
  r.rows = r.tile->rows;
  r.rank = min(l.view.slot_rank[r.slot * kModules + module], l.rank_stride);
  return r;
}

// s: [max_tiles][kTileRows][count * rank_stride] fp32, the shrink's results.
template <class T, int V>
__device__ void shrink_block(const LoraLaunch& l, const Plan& p, int64_t b, float* __restrict__ s,
                             float* red) {
  const int tile_i = static_cast<int>(b / (l.count * p.rank_blocks));
  const int rest = static_cast<int>(b - static_cast<int64_t>(tile_i) * l.count * p.rank_blocks);
  const int mi = rest / p.rank_blocks;
  const int j0 = (rest - mi * p.rank_blocks) * kRanksPerBlock;
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const TileRef ref = tile_ref(l, l.view.a, tile_i, l.module[mi]);
  const T* a = static_cast<const T*>(ref.w);
  const LoraTile* tile = ref.tile;
  const int slot = ref.slot, rows = ref.rows, rank = ref.rank;
  const bool live = j0 < rank;  // block-uniform
  const int64_t kb = warp * p.k_warp;
  const int64_t ke = min(l.k, kb + p.k_warp);
  const T* arow = live ? a + (static_cast<int64_t>(slot) * l.rank_stride + j0) * l.k : nullptr;
  auto load_a = [&](int64_t i, float (&av)[kRanksPerBlock][V]) {
#pragma unroll
    for (int r = 0; r < kRanksPerBlock; ++r) {
      if (j0 + r < rank) {
        load_f32<T, V>(arow + r * l.k + i, av[r]);
      } else {
#pragma unroll
        for (int e = 0; e < V; ++e) av[r][e] = 0.0f;
      }
    }
  };
  float a0[kShrinkPreload][kRanksPerBlock][V];
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
  if (tile == nullptr) return;  // past the step's tiles: not counted
  if (live) {
    const T* x = static_cast<const T*>(l.x);
    float acc[kRanksPerBlock][kTileRows] = {};
    auto accumulate = [&](int64_t i, const float (&av)[kRanksPerBlock][V]) {
#pragma unroll
      for (int t = 0; t < kTileRows; ++t) {
        if (t >= rows) break;
        float xv[V];
        load_f32<T, V>(x + xoff[t] + i, xv);
#pragma unroll
        for (int r = 0; r < kRanksPerBlock; ++r)
#pragma unroll
          for (int e = 0; e < V; ++e) acc[r][t] = fmaf(av[r][e], xv[e], acc[r][t]);
      }
    };
    int64_t i = kb + lane * V;
#pragma unroll
    for (int st = 0; st < kShrinkPreload; ++st, i += 32 * V)
      if (i < ke) accumulate(i, a0[st]);
#pragma unroll 2
    for (; i < ke; i += 32 * V) {
      float av[kRanksPerBlock][V];
      load_a(i, av);
      accumulate(i, av);
    }
    // Lane L holds the warp's sum of acc[L / kTileRows][L % kTileRows] (31 shuffles for 32 sums).
    red[warp * 32 + lane] = transpose_sum(acc, lane);
    __syncthreads();
    if (warp == 0) {
      float sum = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) sum += red[w * 32 + lane];  // fixed order: deterministic
      const int r = lane / kTileRows, t = lane % kTileRows;
      if (t < rows && j0 + r < rank) {
        const int64_t row_stride = static_cast<int64_t>(l.count) * l.rank_stride;
        __stcg(s + (static_cast<int64_t>(tile_i) * kTileRows + t) * row_stride +
                   static_cast<int64_t>(mi) * l.rank_stride + j0 + r,
               sum);
      }
      __threadfence();  // release: this warp's s before the count below
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) atomicAdd(l.view.counters, 1u);
}

// Spins (one thread) until every shrink block of the live tiles is done; then the block reads s.
// A count that never arrives (a broken invariant) traps instead of hanging the stream.
__device__ void wait_for_shrinks(const LoraLaunch& l, const Plan& p) {
  if (threadIdx.x == 0) {
    const unsigned target =
        static_cast<unsigned>(*l.view.num_tiles) * static_cast<unsigned>(l.count * p.rank_blocks);
    volatile unsigned* done = l.view.counters;
    for (unsigned spins = 0; *done < target; ++spins) {
      if (spins > (1u << 26)) __trap();
      __nanosleep(32);
    }
    __threadfence();  // acquire: s written before the counts is visible below
  }
  __syncthreads();
}

template <class T>
__device__ void expand_block(const LoraLaunch& l, const Plan& p, int64_t e,
                             const float* __restrict__ s, float* sm) {
  constexpr int V = Vec<T>::kN;
  const int group = static_cast<int>(e % p.tile_groups);
  const int cb = static_cast<int>(e / p.tile_groups);
  int mi = 0;
  while (mi + 1 < l.count && cb >= p.col_block[mi + 1]) ++mi;
  const int module = l.module[mi];
  const int64_t n = l.n[mi], ldo = l.ldo[mi];
  const int64_t c0 = static_cast<int64_t>(cb - p.col_block[mi]) * kExpandCols + threadIdx.x;
  const int64_t row_stride = static_cast<int64_t>(l.count) * l.rank_stride;
  T* out = static_cast<T*>(l.out[mi]);
  // Each tile's first kBAhead 16-byte loads of its columns' B rows are issued ahead: the first
  // tile's before the PDL wait and the spin (no kernel writes the step block or the pools), the
  // next ones' as the loop steps to them, together with their old outputs.
  Vec<T> bq[kColsPerThread][kBAhead];
  auto load_b = [&](const TileRef& r) {
    if (r.tile == nullptr || r.rank <= 0) return;
    const int rank_v = (r.rank + V - 1) / V * V;
    const T* bw = static_cast<const T*>(r.w) + static_cast<int64_t>(r.slot) * n * l.rank_stride;
#pragma unroll
    for (int k = 0; k < kColsPerThread; ++k) {
      const int64_t c = c0 + k * kThreads;
#pragma unroll
      for (int q = 0; q < kBAhead; ++q)
        if (c < n && q * V < rank_v)
          bq[k][q] = *reinterpret_cast<const Vec<T>*>(bw + c * l.rank_stride + q * V);
    }
  };
  TileRef ref = tile_ref(l, l.view.b, group, module);
  load_b(ref);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  wait_for_shrinks(l, p);
  for (int tile_i = group; ref.tile != nullptr;
       tile_i += p.tile_groups, ref = tile_ref(l, l.view.b, tile_i, module), load_b(ref)) {
    if (ref.rank <= 0) continue;  // block-uniform
    const int rows = ref.rows, rank = ref.rank;
    const int rank_v = (rank + V - 1) / V * V;  // <= rank_stride (a multiple of kLoraRankAlign)
    const T* bw = static_cast<const T*>(ref.w) + static_cast<int64_t>(ref.slot) * n * l.rank_stride;
    int64_t orow[kTileRows];
#pragma unroll
    for (int t = 0; t < kTileRows; ++t) orow[t] = static_cast<int64_t>(ref.tile->row[t < rows ? t : 0]) * ldo;
    // The tile's old outputs, issued with (or after) its B loads and before the s fill: one round
    // trip for all of them.
    T old[kColsPerThread][kTileRows];
#pragma unroll
    for (int k = 0; k < kColsPerThread; ++k) {
      const int64_t c = c0 + k * kThreads;
#pragma unroll
      for (int t = 0; t < kTileRows; ++t)
        if (c < n && t < rows) old[k][t] = out[orow[t] + c];
    }
    for (int idx = static_cast<int>(threadIdx.x); idx < kTileRows * rank_v; idx += kThreads) {
      const int t = idx / rank_v, j = idx - t * rank_v;
      sm[idx] = t < rows && j < rank
                    ? __ldcg(s + (static_cast<int64_t>(tile_i) * kTileRows + t) * row_stride +
                             static_cast<int64_t>(mi) * l.rank_stride + j)
                    : 0.0f;
    }
    __syncthreads();
    float acc[kColsPerThread][kTileRows] = {};
    auto accumulate = [&](int k, int j, const Vec<T>& b) {
#pragma unroll
      for (int t = 0; t < kTileRows; ++t) {
        if (t >= rows) break;
#pragma unroll
        for (int q = 0; q < V; ++q) acc[k][t] = fmaf(sm[t * rank_v + j + q], to_f32(b.v[q]), acc[k][t]);
      }
    };
#pragma unroll
    for (int k = 0; k < kColsPerThread; ++k) {
      const int64_t c = c0 + k * kThreads;
      if (c >= n) continue;
#pragma unroll
      for (int q = 0; q < kBAhead; ++q)
        if (q * V < rank_v) accumulate(k, q * V, bq[k][q]);
      for (int j = kBAhead * V; j < rank_v; j += V)
        accumulate(k, j, *reinterpret_cast<const Vec<T>*>(bw + c * l.rank_stride + j));
#pragma unroll
      for (int t = 0; t < kTileRows; ++t)
        if (t < rows) out[orow[t] + c] = from_f32<T>(to_f32(old[k][t]) + acc[k][t]);
    }
    __syncthreads();  // sm is rewritten for the next tile
  }
}

template <class T, int V>
__global__ void __launch_bounds__(kThreads, 2) lora_fused(LoraLaunch l, Plan p, float* __restrict__ s) {
  extern __shared__ float sm[];  // shrink: [kWarps][32] sums; expand: [kTileRows][rank_stride]
  const int64_t b = blockIdx.x;
  if (b < p.shrink_blocks) return shrink_block<T, V>(l, p, b, s, sm);
  expand_block<T>(l, p, b - p.shrink_blocks, s, sm);
  // The last expand block to leave resets the counters (every shrink block counted before any
  // expand block got past its wait, and every expand block counts itself after it).
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned expand_blocks = gridDim.x - static_cast<unsigned>(p.shrink_blocks);
    if (atomicAdd(l.view.counters + 1, 1u) == expand_blocks - 1) {
      l.view.counters[0] = 0;
      l.view.counters[1] = 0;
    }
  }
}

bool valid(const LoraLaunch& l) {
  if (l.count < 1 || l.count > kLoraMaxStacked || l.k <= 0 || l.rank_stride <= 0) return false;
  if (l.rank_stride % kLoraRankAlign != 0 || l.view.counters == nullptr) return false;
  for (int i = 0; i < l.count; ++i)
    if (l.module[i] < 0 || l.module[i] >= kModules || l.n[i] <= 0 || l.out[i] == nullptr)
      return false;
  return true;
}

}  // namespace

size_t lora_scratch_floats(const LoraLaunch& l, int32_t /*dtype*/) {
  if (l.max_tiles <= 0 || !valid(l)) return 0;
  return static_cast<size_t>(l.max_tiles) * kTileRows * static_cast<size_t>(l.count) *
         static_cast<size_t>(l.rank_stride);
}

bool lora_stacked(const LoraLaunch& l, int32_t dtype, float* scratch, void* stream) {
  if (!valid(l)) return false;
  if (l.max_tiles <= 0) return true;
  const cudaStream_t st = as_stream(stream);
  bool ok = false;
  return dispatch_float(dtype, [&](auto tag) {
    using T = decltype(tag);
    const Plan p = make_plan<T>(l);
    const int64_t blocks =
        p.shrink_blocks + static_cast<int64_t>(p.col_block[l.count]) * p.tile_groups;
    const size_t smem =
        std::max<size_t>(kWarps * 32, static_cast<size_t>(kTileRows) * l.rank_stride) *
        sizeof(float);
    auto kernel = p.vec == 1 ? lora_fused<T, 1> : lora_fused<T, Vec<T>::kN>;
    ok = sable::cuda::launch(kernel, dim3(static_cast<unsigned>(blocks)), kThreads, smem, st, l, p,
                             scratch) == cudaSuccess;
  }) && ok;
}

}  // namespace sable::ops::cuda
