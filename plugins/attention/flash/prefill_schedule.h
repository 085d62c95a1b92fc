// The index math of the tensor-core prefill kernel (prefill_attention.cu), shared by host and device
// so that a plain C++ unit test (tests/unit/attention_flash_schedule_test.cpp) checks it without a GPU.
//
// Work list: plan() cuts each sequence's new tokens into query tiles of kBM consecutive tokens; a
// tile is (seq, q0 = first token index in the batch, rows, pos0 = KV position of its first row,
// -1 for a padding sequence, whose rows are written as zeros). Row r sits at position pos0 + r and
// sees KV positions [row_begin(pos0 + r), pos0 + r] (causal, optional sliding window). The CTA walks
// KV tiles of kBN positions from kv_range's lo up to hi = pos0 + rows; only tiles touching the
// diagonal or the window's edge need masking. The grid is sized by max_prefill_tiles (batch shape
// only); CTAs past the tile count exit.
// Shared memory tiles are [rows][D] bf16 with 16-byte chunks XOR-swizzled by (row & 7), so the 8
// rows an ldmatrix phase reads hit 8 different bank groups. Fragment helpers give each lane's
// ldmatrix source row/column and accumulator position for mma.sync m16n8k16 (PTX ISA "Matrix
// Fragments for mma.m16n8k16").
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define SABLE_FLASH_HD __host__ __device__ __forceinline__
#else
#define SABLE_FLASH_HD inline
#endif

namespace sable::attention::flash {

constexpr int32_t kBM = 64;            // query rows per CTA (4 warps x 16)
constexpr int32_t kBN = 64;            // KV positions per tile
constexpr int32_t kPrefillWarps = 4;
constexpr int32_t kTileWords = 4;      // int32 words per work-list entry

struct PrefillTile {
  int32_t seq;
  int32_t q0;    // first token of the tile in the batch
  int32_t rows;  // 1..kBM
  int32_t pos0;  // KV position of row 0; -1 = padding (write zeros)
};

// Upper bound of the tiles of any batch of `tokens` tokens in `seqs` sequences.
SABLE_FLASH_HD int32_t max_prefill_tiles(int32_t tokens, int32_t seqs) {
  return (tokens + kBM - 1) / kBM + seqs;
}

SABLE_FLASH_HD PrefillTile load_tile(const int32_t* list, int32_t i) {
  const int32_t* w = list + static_cast<int64_t>(i) * kTileWords;
  return PrefillTile{w[0], w[1], w[2], w[3]};
}

// First KV position visible from position `pos` (window <= 0: no sliding window).
SABLE_FLASH_HD int32_t row_begin(int32_t pos, int32_t window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

// KV positions [lo, hi) the tile reads (empty for padding).
SABLE_FLASH_HD void kv_range(const PrefillTile& t, int32_t window, int32_t* lo, int32_t* hi) {
  if (t.pos0 < 0) {
    *lo = *hi = 0;
    return;
  }
  *lo = row_begin(t.pos0, window);
  *hi = t.pos0 + t.rows;
}

SABLE_FLASH_HD int32_t kv_tiles(int32_t lo, int32_t hi) { return hi > lo ? (hi - lo + kBN - 1) / kBN : 0; }

// The K/V pipeline of the wgmma prefill kernel (prefill_wgmma.cu): `stages` buffers, tile j in
// stage j % stages, one cp.async group a tile (tile t's is group t: the prologue commits tiles
// 0 .. lead - 1, iteration j commits tile j + lead or an empty group). Without the overlap, tile j's
// products finish inside iteration j, so iteration j may refill the stage tile j - 1 used; with
// it, tile j - 1's V is still read in iteration j, so only the stage of tile j - 2 is free.
// wgmma_lead: how many tiles ahead iteration j issues; wgmma_pending: the groups cp.async.wait may
// leave in flight when tile j must have landed.
SABLE_FLASH_HD constexpr int32_t wgmma_lead(int32_t stages, bool overlap) {
  return stages - (overlap ? 2 : 1);
}
SABLE_FLASH_HD constexpr int32_t wgmma_pending(int32_t stages, bool overlap) {
  return wgmma_lead(stages, overlap) - 1;
}

// Q heads a wgmma prefill CTA takes (4, 2 or 1, at most max_heads) for a GQA group of `group` q
// heads a KV head. Without `partial`, the most that divide the group. With it, a group the heads
// do not divide ends on a CTA whose spare warpgroups compute for nothing, and the choice is by
// the useful rate: each size's measured rate (bench/NOTES.md v16, H100, 8k prompt, D 128: 4 heads
// 296 TFLOP/s, 2 with the overlap 233, 1 168) times the share of its warpgroups that are live.
// So 7 -> 4 (2 CTAs, 7 of 8 live), 5 and 6 -> 2, 3 -> 4, 1 -> 1.
SABLE_FLASH_HD constexpr int32_t wgmma_heads_for_group(int32_t group, int32_t max_heads,
                                                       bool partial) {
  int32_t best = 1;
  int64_t best_rate = 0;
  for (int32_t h = 4; h >= 1; h /= 2) {
    if (h > max_heads && h > 1) continue;
    if (!partial) {
      if (group % h == 0) return h;
      continue;
    }
    const int64_t rate = h == 4 ? 296 : h == 2 ? 233 : 168;
    const int64_t slots = (group + h - 1) / h * h;
    const int64_t useful = rate * group * 64 / slots;  // x 64: integer steps fine enough
    if (useful > best_rate) {
      best = h;
      best_rate = useful;
    }
  }
  return best;
}

// Whether row r of tile t sees KV position kv.
SABLE_FLASH_HD bool visible(const PrefillTile& t, int32_t r, int32_t kv, int32_t window) {
  const int32_t pos = t.pos0 + r;
  return r < t.rows && kv <= pos && kv >= row_begin(pos, window);
}

// Whether some (row, kv) of the KV tile starting at k0 is not visible (else the mask is skipped).
SABLE_FLASH_HD bool needs_mask(const PrefillTile& t, int32_t k0, int32_t window) {
  if (k0 + kBN - 1 > t.pos0) return true;  // crosses the diagonal (or runs past hi)
  return window > 0 && k0 < row_begin(t.pos0 + kBM - 1, window);
}

// Element offset of (row, col) in a swizzled [rows][d] smem tile (col % 8 kept, chunk XORed).
SABLE_FLASH_HD int32_t smem_off(int32_t row, int32_t col, int32_t d) {
  return row * d + (((col >> 3) ^ (row & 7)) << 3) + (col & 7);
}

// Element offset of KV position `pos` of head `kvh` in a [pages, page_size, Hk, D] pool.
SABLE_FLASH_HD int64_t kv_row_offset(const int32_t* pages, int32_t page_size, int32_t pos,
                                     int32_t kv_heads, int32_t kvh, int32_t d) {
  const int64_t slot = static_cast<int64_t>(pages[pos / page_size]) * page_size + pos % page_size;
  return (slot * kv_heads + kvh) * d;
}

// ldmatrix.x4 over an m16 x k16 A block stored [m][k] (Q): registers 0..3 = a0..a3.
SABLE_FLASH_HD void a_frag_src(int32_t lane, int32_t* row, int32_t* col) {
  *row = lane & 15;
  *col = (lane >> 4) * 8;
}

// ldmatrix.x4 over two n8 x k16 B blocks stored [n][k] (K: [kv][d]): registers 0,1 = b0,b1 of
// n-block 0, registers 2,3 those of n-block 1.
SABLE_FLASH_HD void b_frag_src(int32_t lane, int32_t* row, int32_t* col) {
  *row = (lane & 7) + ((lane >> 4) << 3);
  *col = ((lane >> 3) & 1) * 8;
}

// ldmatrix.x4.trans over two n8 x k16 B blocks stored [k][n] (V: [kv][d], k = kv, n = d): same
// register order as b_frag_src.
SABLE_FLASH_HD void v_frag_src(int32_t lane, int32_t* row, int32_t* col) {
  *row = (lane & 7) + (((lane >> 3) & 1) << 3);
  *col = (lane >> 4) * 8;
}

// Accumulator element i (0..3) of `lane` in an m16 x n8 fp32 block.
SABLE_FLASH_HD void acc_pos(int32_t lane, int32_t i, int32_t* row, int32_t* col) {
  *row = (lane >> 2) + (i >> 1) * 8;
  *col = (lane & 3) * 2 + (i & 1);
}

// P as an A operand without leaving registers: A register r (0..3) of k-step kk is the pair of S
// accumulator elements (elem, elem + 1) of n-block nb.
SABLE_FLASH_HD void p_frag_from_acc(int32_t kk, int32_t r, int32_t* nb, int32_t* elem) {
  *nb = 2 * kk + (r >> 1);
  *elem = (r & 1) * 2;
}

// The host side of plan(): the work list of a batch, heaviest tiles (longest KV range) first so the
// tail of the grid is short. `qo_indptr` [B+1], `kv_lens` [B] (0 = padding). With skip_single,
// sequences with one new token are left out (the decode kernel serves them). Returns the tiles.
inline std::vector<PrefillTile> build_prefill_tiles(const int32_t* qo_indptr, const int32_t* kv_lens,
                                                    int32_t num_seqs, int32_t window,
                                                    bool skip_single = false) {
  std::vector<PrefillTile> tiles;
  for (int32_t s = 0; s < num_seqs; ++s) {
    const int32_t q0 = qo_indptr[s], n = qo_indptr[s + 1] - q0;
    if (skip_single && n == 1) continue;
    const bool padding = kv_lens[s] == 0;
    for (int32_t j = 0; j < n; j += kBM)
      tiles.push_back(PrefillTile{s, q0 + j, std::min(kBM, n - j), padding ? -1 : kv_lens[s] - n + j});
  }
  auto work = [window](const PrefillTile& t) {
    int32_t lo = 0, hi = 0;
    kv_range(t, window, &lo, &hi);
    return hi - lo;
  };
  std::stable_sort(tiles.begin(), tiles.end(),
                   [&](const PrefillTile& a, const PrefillTile& b) { return work(a) > work(b); });
  return tiles;
}

}  // namespace sable::attention::flash
