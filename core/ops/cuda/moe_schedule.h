// The index math of the CUDA fused-MoE op (moe_kernels.cu), shared by host and device so that a
// plain C++ unit test (tests/unit/ops_moe_schedule_test.cpp) checks it on a machine without a GPU.
//
// Vocabulary: the T*k (token, slot) pairs of ids[T, k] are "pairs"; pair i = t*k + j. Grouping sorts
// them by expert: offsets[E+1] is the exclusive prefix of per-expert counts, perm[pos] = pair at
// sorted position pos, inv[pair] = pos (-1 for a pair whose id is outside [0, E)). The grouped GEMM
// cuts each expert's rows into m-tiles of kTileM rows; tile_offsets[E+1] is the exclusive prefix of
// per-expert m-tile counts, so global m-tile g belongs to the expert e with
// tile_offsets[e] <= g < tile_offsets[e+1]. The grid is sized by max_m_tiles() (depends only on
// T*k and E, never on the routing), and CTAs past tile_offsets[E] exit.
// The fragment helpers give each lane's ldmatrix source row/column and accumulator position for
// mma.sync m16n8k16 (PTX ISA "Matrix Fragments for mma.m16n8k16").
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define SABLE_MOE_HD __host__ __device__ __forceinline__
#else
#define SABLE_MOE_HD inline
#endif

namespace sable::ops::cuda::moe {

constexpr int32_t kTileM = 64;  // rows of a grouped-GEMM tile (pairs of one expert)
constexpr int32_t kTileN = 64;  // output columns of a tile
constexpr int32_t kTileK = 32;  // reduction depth per pipeline stage
constexpr int32_t kMaxExperts = 1024;  // the grouping kernel scans experts in one block

SABLE_MOE_HD int32_t tiles_for(int32_t rows, int32_t bm) { return (rows + bm - 1) / bm; }

// An upper bound of sum_e ceil(count_e / bm) over any routing of `pairs` pairs to `experts`
// experts: at most min(pairs, experts) experts are non-empty and each adds at most one partial tile.
SABLE_MOE_HD int64_t max_m_tiles(int64_t pairs, int32_t experts, int32_t bm) {
  const int64_t nonempty = pairs < experts ? pairs : experts;
  return (pairs + bm - 1) / bm + nonempty;
}

// One m-tile of the grouped GEMM: rows [row0, row0 + rows) of the sorted pairs, all of `expert`.
struct Tile {
  int32_t expert;
  int32_t row0;
  int32_t rows;  // 1..bm
};

// Finds global m-tile g. False when g is past the last tile (the CTA has nothing to do).
SABLE_MOE_HD bool locate_tile(const int32_t* tile_offsets, const int32_t* offsets,
                              int32_t experts, int32_t bm, int64_t g, Tile* out) {
  if (g < 0 || g >= tile_offsets[experts]) return false;
  // Largest e with tile_offsets[e] <= g: skips empty experts (equal neighbouring offsets).
  int32_t lo = 0, hi = experts - 1;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) >> 1;
    if (tile_offsets[mid] <= g) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int32_t mt = static_cast<int32_t>(g) - tile_offsets[lo];
  out->expert = lo;
  out->row0 = offsets[lo] + mt * bm;
  const int32_t left = offsets[lo + 1] - out->row0;
  out->rows = left < bm ? left : bm;
  return true;
}

// Row of the activation matrix that sorted row `pos` reads in the first GEMM: its token.
SABLE_MOE_HD int32_t token_of(const int32_t* perm, int32_t pos, int32_t top_k) {
  return perm[pos] / top_k;
}

// ldmatrix.x4 over an m16 x k16 A block stored [m][k]: the (row, col) whose 16-byte row segment
// `lane` addresses. Registers 0..3 then hold mma's a0..a3 (rows 0-7/8-15 x k 0-7/8-15).
SABLE_MOE_HD void a_frag_src(int32_t lane, int32_t* row, int32_t* col) {
  *row = lane & 15;
  *col = (lane >> 4) * 8;
}

// ldmatrix.x4 over two n8 x k16 B blocks stored [n][k] (weights are [N, K]): registers 0,1 are
// b0,b1 of n-block 0 and registers 2,3 those of n-block 1.
SABLE_MOE_HD void b_frag_src(int32_t lane, int32_t* row, int32_t* col) {
  *row = (lane & 7) + ((lane >> 4) << 3);
  *col = ((lane >> 3) & 1) * 8;
}

// Accumulator element i (0..3) of `lane` in an m16 x n8 fp32 block.
SABLE_MOE_HD void acc_pos(int32_t lane, int32_t i, int32_t* row, int32_t* col) {
  *row = (lane >> 2) + (i >> 1) * 8;
  *col = (lane & 3) * 2 + (i & 1);
}

// The host reference of the grouping (what the device kernel computes, up to the order of pairs
// within one expert, which atomics leave unspecified and which no result depends on).
struct Grouping {
  std::vector<int32_t> offsets;       // [E+1]
  std::vector<int32_t> tile_offsets;  // [E+1]
  std::vector<int32_t> perm;          // [T*k], entries past offsets[E] unused (-1)
  std::vector<int32_t> inv;           // [T*k], -1 for ids outside [0, E)
};

inline Grouping group_pairs(const int32_t* ids, int32_t pairs, int32_t experts, int32_t bm) {
  Grouping g;
  g.offsets.assign(static_cast<size_t>(experts) + 1, 0);
  g.tile_offsets.assign(static_cast<size_t>(experts) + 1, 0);
  g.perm.assign(static_cast<size_t>(pairs), -1);
  g.inv.assign(static_cast<size_t>(pairs), -1);
  std::vector<int32_t> count(static_cast<size_t>(experts), 0);
  for (int32_t i = 0; i < pairs; ++i)
    if (ids[i] >= 0 && ids[i] < experts) ++count[static_cast<size_t>(ids[i])];
  for (int32_t e = 0; e < experts; ++e) {
    g.offsets[e + 1] = g.offsets[e] + count[e];
    g.tile_offsets[e + 1] = g.tile_offsets[e] + tiles_for(count[e], bm);
  }
  std::vector<int32_t> fill(g.offsets.begin(), g.offsets.end() - 1);
  for (int32_t i = 0; i < pairs; ++i) {
    if (ids[i] < 0 || ids[i] >= experts) continue;
    const int32_t pos = fill[static_cast<size_t>(ids[i])]++;
    g.perm[pos] = i;
    g.inv[i] = pos;
  }
  return g;
}

}  // namespace sable::ops::cuda::moe
