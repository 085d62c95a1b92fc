// A decode batch's LoRA deltas in one launch (lora_delta_cluster, kernels.h): the shrink, the sum
// of its K splits and the expand to fp32 deltas, which lora_kernels.cu runs as three launches
// (shrink, reduce, expand_to_delta). Beside the q|k|v and o GEMMs of a decode step that side
// branch outlasts the GEMM it hides behind (bench/NOTES.md v19-v21): its cost is the launches'
// latency, not their bytes.
//
// One thread-block cluster of C blocks per tile (blockIdx.y; clusters along x), 4 to 12 warps a
// block:
//   1. the tile's shrink tasks (module, 4 rank rows, K split) shared out over the cluster's warps,
//      each warp's partials (lora_detail::ShrinkWarp, as the split shrink computes them) kept in
//      its block's shared memory;
//   2. after a cluster barrier every block sums the partials of all blocks through distributed
//      shared memory, in the reduce kernel's order (lora_detail::sum_splits), into
//      [module][row][R];
//   3. block c expands columns [c * chunk, (c + 1) * chunk) of the modules' concatenated outputs
//      (lora_detail::expand_column, the expand kernel's arithmetic) into l.delta.
// So the deltas have the three-launch path's bits. With zero_rest one more cluster (blockIdx.y ==
// max_tiles) zeroes the rows outside every tile. A block reads the step block, its first task's A
// and its first column's B before the PDL wait (none is written by a kernel). Hopper (sm_90) and
// newer; lora_delta_cluster_fits says when the launch applies.
#include <cooperative_groups.h>

#include <atomic>
#include <cstdlib>
#include <utility>

#include "core/ops/cuda/lora_common.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::ops::cuda {
namespace {

namespace cg = cooperative_groups;
using namespace lora_detail;

// Warps a block (SABLE_LORA_CLUSTER_WARPS: 4, 8 or 12; default 8). 168-194 registers a thread
// (sm_90a, bf16): a block of 12 warps takes a whole SM's registers and one of 8 three quarters,
// so neither can share an SM with a CTA of the base GEMM it runs beside; one of 4 can.
constexpr int kDefaultWarps = 8;
constexpr int kMaxCluster = 8;              // the portable cluster size
constexpr size_t kMaxSmemBytes = 40 << 10;  // dynamic, below the 48 KB that needs no opt-in

struct ClusterPlan {
  int32_t warps = kDefaultWarps;           // a block's
  int32_t tasks_per_warp = 1;              // shrink tasks a warp takes at most
  int64_t chunk = 0;                       // expand columns a block takes
  int64_t col0[kLoraMaxStacked + 1] = {};  // first column of each module, then the total
};

ClusterPlan make_cluster_plan(const LoraLaunch& l, const Plan& p, int cluster, int warps) {
  ClusterPlan cp;
  cp.warps = warps;
  const int64_t tasks = int64_t{l.count} * (l.rank_stride / kRanksPerWarp) * p.splits;
  cp.tasks_per_warp = static_cast<int32_t>(ceil_div(tasks, int64_t{cluster} * warps));
  for (int i = 0; i < l.count; ++i) cp.col0[i + 1] = cp.col0[i] + l.n[i];
  cp.chunk = ceil_div(cp.col0[l.count], cluster);
  return cp;
}

size_t smem_bytes(const LoraLaunch& l, const ClusterPlan& cp) {
  return (static_cast<size_t>(cp.tasks_per_warp) * cp.warps * 32 +
          static_cast<size_t>(l.count) * kTileRows * l.rank_stride) *
         sizeof(float);
}

// The module of concatenated column gc and its column within the module.
__device__ __forceinline__ int module_of(const LoraLaunch& l, const ClusterPlan& cp, int64_t gc) {
  int mi = 0;
  while (mi + 1 < l.count && gc >= cp.col0[mi + 1]) ++mi;
  return mi;
}

// Rows outside every tile (all rows where a module has no B pool) get zero deltas: the cluster
// at blockIdx.y == max_tiles, its blocks over the same column chunks as the expand's.
template <int kThreads>
__device__ void zero_rest(const LoraLaunch& l, const ClusterPlan& cp, int64_t col_begin,
                          int64_t col_end) {
  __shared__ uint32_t covered[kZeroWords];
  const int tid = static_cast<int>(threadIdx.x);
  gather_covered_rows(l.view.tiles, *l.view.num_tiles, covered);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int64_t gc = col_begin + tid; gc < col_end; gc += kThreads) {
    const int mi = module_of(l, cp, gc);
    const int64_t c = gc - cp.col0[mi];
    const bool pool = l.view.b[l.layer * kModules + l.module[mi]] != nullptr;
    // Without a B pool no tile row is written either: every row is zero.
    zero_uncovered_rows(l.delta + l.delta_offset(mi), l.n[mi], c, l.rows, covered, !pool);
  }
}

template <class T, int V, int kClusterWarps>
__global__ void __launch_bounds__(kClusterWarps * 32, 1)
    delta_cluster_kernel(LoraLaunch l, Plan p, ClusterPlan cp) {
  constexpr int kClusterThreads = kClusterWarps * 32;
  extern __shared__ float4 smem4[];
  float* part = reinterpret_cast<float*>(smem4);  // [tasks_per_warp][kClusterWarps][32]
  float* sums = part + cp.tasks_per_warp * kClusterWarps * 32;  // [count][kTileRows][R]
  const cg::cluster_group cluster = cg::this_cluster();
  const int C = static_cast<int>(gridDim.x), cr = static_cast<int>(blockIdx.x);
  const int tile_i = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x), warp = tid >> 5, lane = tid & 31;
  const int R = l.rank_stride;
  const int64_t col_begin = cr * cp.chunk;
  const int64_t col_end = min(cp.col0[l.count], col_begin + cp.chunk);
  if (tile_i >= l.max_tiles) return zero_rest<kClusterThreads>(l, cp, col_begin, col_end);
  if (tile_i >= *l.view.num_tiles) {  // the whole cluster: no barrier below is reached
    sable::cuda::wait_for_predecessor();
    sable::cuda::allow_dependents();
    return;
  }
  const LoraTile* tile = &l.view.tiles[tile_i];
  const int slot = tile->slot, rows = tile->rows;
  // Shrink tasks: task = (mi * quads + q) * splits + z; warp gw of the cluster takes tasks gw,
  // gw + warps, ... and keeps the i-th one's partials at part[(i * kClusterWarps + warp) * 32].
  const int quads = R / kRanksPerWarp, warps = C * kClusterWarps;
  const int gw = cr * kClusterWarps + warp;
  const int tasks = l.count * quads * p.splits;
  int64_t xoff[kTileRows];
  tile_x_offsets(l, tile, rows, xoff);
  ShrinkWarp<T, V> w;
  auto start_task = [&](int task) {
    const int z = task % p.splits, mq = task / p.splits;
    const TileRef ref = tile_ref(l, l.view.a, tile_i, l.module[mq / quads]);
    w.init(l, ref, (mq % quads) * kRanksPerWarp, static_cast<int64_t>(z) * p.k_chunk, p.k_chunk);
    w.preload(l, lane);
  };
  if (gw < tasks) start_task(gw);
  // The expand's columns: B rows of the tile's slot; the first one's head loads before the wait.
  auto b_row = [&](int64_t gc) -> const T* {
    if (gc >= col_end) return nullptr;
    const int mi = module_of(l, cp, gc);
    const T* pool = static_cast<const T*>(l.view.b[l.layer * kModules + l.module[mi]]);
    if (pool == nullptr) return nullptr;
    return pool + (static_cast<int64_t>(slot) * l.n[mi] + (gc - cp.col0[mi])) * R;
  };
  Vec<T> b0[kExpandPreload];
  const T* br = b_row(col_begin + tid);
  if (br != nullptr) load_b_head(br, R, b0);
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  for (int i = 0, task = gw; task < tasks; ++i, task += warps) {
    if (i > 0) start_task(task);
    const float v = w.arow != nullptr ? w.sums(l, xoff, rows, lane) : 0.0f;
    part[(i * kClusterWarps + warp) * 32 + lane] = v;
  }
  cluster.sync();  // every block's partials are written
  // The split sums, zero past the tile's rows and each module's rank (and where it has no A
  // pool), as the reduce kernel leaves them.
  for (int idx = tid; idx < l.count * kTileRows * R; idx += kClusterThreads) {
    const int mi = idx / (kTileRows * R), t = idx / R % kTileRows, j = idx % R;
    const int module = l.module[mi];
    const bool pool = l.view.a[l.layer * kModules + module] != nullptr;
    const int rank = pool ? min(l.view.slot_rank[slot * kModules + module], R) : 0;
    float v = 0.0f;
    if (t < rows && j < rank) {
      const int first = (mi * quads + j / kRanksPerWarp) * p.splits;
      const int at = (j % kRanksPerWarp) * kTileRows + t;
      v = sum_splits(p.splits, [&](int z) {
        const int task = first + z, g = task % warps;
        const float* src = cluster.map_shared_rank(part, g / kClusterWarps);
        return src[((task / warps) * kClusterWarps + g % kClusterWarps) * 32 + at];
      });
    }
    sums[idx] = v;
  }
  __syncthreads();
  // The other blocks may still read this block's partials: leave only after they all arrive.
  auto arrived = cluster.barrier_arrive();
  for (int64_t gc = col_begin + tid; gc < col_end; gc += kClusterThreads) {
    const T* next = b_row(gc + kClusterThreads);
    Vec<T> bn[kExpandPreload];
    if (next != nullptr) load_b_head(next, R, bn);
    if (br != nullptr) {
      const int mi = module_of(l, cp, gc);
      const int64_t c = gc - cp.col0[mi];
      const int rank = min(l.view.slot_rank[slot * kModules + l.module[mi]], R);
      float acc[kTileRows];
      expand_column(br, b0, sums + mi * kTileRows * R, R, rank, rows, acc);
      float* delta = l.delta + l.delta_offset(mi);
#pragma unroll
      for (int t = 0; t < kTileRows; ++t) {
        if (t >= rows) break;
        delta[static_cast<int64_t>(tile->row[t]) * l.n[mi] + c] = acc[t];
      }
    }
    br = next;
#pragma unroll
    for (int q = 0; q < kExpandPreload; ++q) b0[q] = bn[q];
  }
  cluster.barrier_wait(std::move(arrived));
}

std::atomic<uint64_t> g_launches{0};

bool cluster_capable() {
  static const bool ok = [] {
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
           major >= 9;
  }();
  return ok;
}

// The delta form: l.delta set (the outs are never touched), at most kLoraZeroMaxRows rows to zero.
bool shape_ok(const LoraLaunch& l) {
  return lora_shapes_valid(l) && l.max_tiles > 0 && l.rows > 0 && l.delta != nullptr &&
         !(l.zero_rest && l.rows > kLoraZeroMaxRows);
}

// Calls f(tag, plan, cluster plan) for dtype's element type; false for other dtypes and shapes
// the kernel does not take.
int cluster_warps() {
  thread_local const int warps = [] {
    const char* v = std::getenv("SABLE_LORA_CLUSTER_WARPS");
    const int n = v != nullptr ? std::atoi(v) : 0;
    return n == 4 || n == 8 || n == 12 ? n : kDefaultWarps;
  }();
  return warps;
}

template <class F>
bool with_cluster_plan(const LoraLaunch& l, int32_t dtype, F&& f) {
  const int cluster = lora_cluster_size();
  if (cluster <= 0 || !cluster_capable() || !shape_ok(l)) return false;
  bool ok = false;
  return dispatch_float(dtype,
                        [&](auto tag) {
                          using T = decltype(tag);
                          const Plan p = make_plan<T>(l);
                          const ClusterPlan cp = make_cluster_plan(l, p, cluster, cluster_warps());
                          ok = smem_bytes(l, cp) <= kMaxSmemBytes && f(tag, p, cp, cluster);
                        }) &&
         ok;
}

}  // namespace

int32_t lora_cluster_size() {
  thread_local const int32_t size = [] {
    const char* v = std::getenv("SABLE_LORA_CLUSTER");
    if (v == nullptr || v[0] == '\0') return 0;  // opt-in until measured on the device
    const int n = std::atoi(v);
    return n == 1 || n == 2 || n == 4 || n == kMaxCluster ? n : 0;
  }();
  return size;
}

bool lora_delta_cluster_fits(const LoraLaunch& l, int32_t dtype) {
  return with_cluster_plan(l, dtype,
                           [](auto, const Plan&, const ClusterPlan&, int) { return true; });
}

bool lora_delta_cluster(const LoraLaunch& l, int32_t dtype, void* stream) {
  return with_cluster_plan(
      l, dtype, [&](auto tag, const Plan& p, const ClusterPlan& cp, int cluster) {
        using T = decltype(tag);
        constexpr int V = Vec<T>::kN;
        auto kernel =
            cp.warps == 4
                ? (p.vec == 1 ? delta_cluster_kernel<T, 1, 4> : delta_cluster_kernel<T, V, 4>)
            : cp.warps == 12
                ? (p.vec == 1 ? delta_cluster_kernel<T, 1, 12> : delta_cluster_kernel<T, V, 12>)
                : (p.vec == 1 ? delta_cluster_kernel<T, 1, 8> : delta_cluster_kernel<T, V, 8>);
        cudaLaunchConfig_t config{};
        config.gridDim = dim3(static_cast<unsigned>(cluster),
                              static_cast<unsigned>(l.max_tiles + (l.zero_rest ? 1 : 0)));
        config.blockDim = dim3(static_cast<unsigned>(cp.warps * 32));
        config.dynamicSmemBytes = smem_bytes(l, cp);
        config.stream = as_stream(stream);
        cudaLaunchAttribute attribute[2];
        attribute[0].id = cudaLaunchAttributeClusterDimension;
        attribute[0].val.clusterDim.x = static_cast<unsigned>(cluster);
        attribute[0].val.clusterDim.y = 1;
        attribute[0].val.clusterDim.z = 1;
        attribute[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attribute[1].val.programmaticStreamSerializationAllowed = 1;
        config.attrs = attribute;
        config.numAttrs = sable::cuda::pdl_enabled() ? 2 : 1;
        if (cudaLaunchKernelEx(&config, kernel, l, p, cp) != cudaSuccess) return false;
        g_launches.fetch_add(1, std::memory_order_relaxed);
        return true;
      });
}

uint64_t lora_delta_cluster_launches() {
  return g_launches.load(std::memory_order_relaxed);
}

}  // namespace sable::ops::cuda
