// The index math of the GQA-packed decode kernel (decode_attention.cu), shared by host and device
// so that a plain C++ unit test (tests/unit/attention_flash_decode_test.cpp) checks it, with a
// lane-level emulation of the kernel, without a GPU.
//
// A CTA serves (decode token, KV head, split). Its 16 MMA rows are the group's q heads
// (row r = q head kvh * group + r, rows >= group zero-padded). The token's visible positions
// [begin, end) are cut into `splits` ranges of `chunk` positions (split s: [begin + s * chunk,
// min(end, begin + (s + 1) * chunk)), possibly empty); splits and chunk come from the batch shape
// and its longest sequence, so a captured CUDA graph's grid stays valid. Inside a split, KV tiles
// of kDecodeN positions; warp w takes positions [16w, 16w + 16) of each tile.
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "prefill_schedule.h"  // SABLE_FLASH_HD, smem_off, fragment helpers, kv_row_offset

namespace sable::attention::flash {

constexpr int32_t kDecodeWarps = 4;
constexpr int32_t kDecodeN = 64;    // KV positions per tile, 16 per warp
constexpr int32_t kDecodeRows = 16;  // MMA rows: the group's q heads, zero-padded
constexpr int32_t kMaxSplits = 32;
// The deep pipeline for small decode batches: every tile of a split (384 positions: six tiles of
// 64 with 4 warps at D 64, three of 128 with 8 warps at D 128) is copied at once, so a short
// context costs one memory round trip and writes its output directly, with no partials, fence,
// ticket or merge. Measured in graphs (bench/NOTES.md v14, H100): after the loop the two-stage
// kernel's split merge, or its serial tiles when one split holds them, cost ~7-8 us of a batch-1
// decode step's attention (~9-15 us a layer). ~200 KB of shared memory at D 128: one CTA per SM,
// fine for grids of a few dozen CTAs.
constexpr int32_t kDeepStages = 6;
constexpr int32_t kDeepChunk = kDeepStages * kDecodeN;

// Whether the decode kernel serves this geometry.
SABLE_FLASH_HD bool decode_supported(int32_t head_dim, int32_t group) {
  return (head_dim == 64 || head_dim == 128) && group >= 1 && group <= kDecodeRows;
}

// CTAs of the decode kernel that fit on one SM: shared memory (Q + `stages` stages of K and V;
// three stages: 102 KB at D 128) allows 3 at D 128 and 6 at D 64, the registers (168 at D 128, 96
// at D 64; the kernel's launch bounds hold them there) 3 and 5.
SABLE_FLASH_HD constexpr int32_t decode_ctas_per_sm(int32_t head_dim, int32_t stages = 2) {
  if (stages >= kDeepStages) return head_dim <= 64 ? 2 : 1;
  if (stages >= 3) return head_dim <= 64 ? 4 : 2;
  return head_dim <= 64 ? 5 : 3;
}

// Splits for a decode-only batch of `tokens` tokens: enough CTAs for two waves, at most kMaxSplits.
// With `wave_fit`, a few more splits where that fills the last wave better: 64 x 8 (token, KV head)
// pairs on 132 SMs x 3 CTAs took 2 splits = 2.6 waves (the last 59 % busy, ~86 % of the time
// useful), 3 splits make 3.9 waves (97 %). Shape-only, so a captured graph keeps its grid.
SABLE_FLASH_HD int32_t decode_splits(int32_t tokens, int32_t kv_heads, int32_t head_dim, int32_t num_sms,
                                     bool wave_fit = true, int32_t stages = 2) {
  const int32_t blocks = tokens * kv_heads > 1 ? tokens * kv_heads : 1;
  const int32_t slots = num_sms * decode_ctas_per_sm(head_dim, stages);
  const int32_t target = 2 * slots;
  int32_t splits = (target + blocks - 1) / blocks;
  splits = splits < 1 ? 1 : splits > kMaxSplits ? kMaxSplits : splits;
  // Past four waves the last one's idle share is small (and mixed lengths balance themselves).
  if (!wave_fit || slots <= 0 || int64_t(blocks) * splits >= 4 * int64_t(slots)) return splits;
  // The fraction of the launched waves' CTA slots that hold work, per candidate split count.
  auto fill = [&](int32_t s) {
    const int64_t ctas = int64_t(blocks) * s;
    const int64_t waves = (ctas + slots - 1) / slots;
    return double(ctas) / double(waves * slots);
  };
  int32_t best = splits;
  double best_fill = fill(splits);
  const int32_t last = 2 * splits + 1 < kMaxSplits ? 2 * splits + 1 : kMaxSplits;
  for (int32_t s = splits + 1; s <= last; ++s)
    if (fill(s) > best_fill + 0.02) {  // more splits cost partials and a merge: only a clear gain
      best = s;
      best_fill = fill(s);
    }
  return best;
}

// Positions per split: the longest sequence divided evenly, at least `min_chunk` (>= one tile).
// A larger minimum leaves short contexts in fewer splits: each split past the first costs its
// partials, a fence, a ticket and the merge's loads, where one more tile in a split's pipeline
// costs about a tile's copy.
SABLE_FLASH_HD int32_t decode_chunk(int32_t max_len, int32_t splits, int32_t min_chunk = kDecodeN) {
  const int32_t even = (max_len + splits - 1) / splits;
  const int32_t floor = min_chunk > kDecodeN ? min_chunk : kDecodeN;
  return even > floor ? even : floor;
}

// decode_chunk's floor for a two-stage batch (the deep pipeline has its own): up to kFloorTiles
// tiles a split where the CTAs that then hold positions still fill about a wave of the SMs'
// slots; else one tile. Each split costs a fixed part (launch, metadata loads, partials, fence,
// ticket, merge) that a short split does not amortize: measured (bench/NOTES.md v23, H100, 8B,
// SABLE_DECODE_MIN_CHUNK): 64 x 192 positions (512 pairs, 3 splits of one tile each) 8.07 ->
// 7.42 ms a step with 192; 16 x 576 (128 pairs, 9 splits) 7.33 -> 6.99 with 192 (256: 7.02, 384:
// 7.17); 4 x 1024 (32 pairs) 7.52 -> 7.67 with 192 (192 CTAs, half a wave: worse). Shape and
// longest sequence only, like decode_chunk (the chunk is a device-side value a graph re-reads).
constexpr int32_t kFloorTiles = 3;
SABLE_FLASH_HD int32_t decode_floor(int32_t tokens, int32_t kv_heads, int32_t head_dim,
                                    int32_t num_sms, int32_t splits, int32_t max_len,
                                    int32_t stages = 2) {
  const int64_t pairs = tokens * kv_heads > 1 ? tokens * kv_heads : 1;
  const int64_t slots = int64_t(num_sms) * decode_ctas_per_sm(head_dim, stages);
  const int32_t even = (max_len + splits - 1) / (splits > 0 ? splits : 1);
  for (int32_t tiles = kFloorTiles; tiles > 1; --tiles) {
    const int32_t chunk = even > tiles * kDecodeN ? even : tiles * kDecodeN;
    const int64_t used = max_len > 0 ? (max_len + chunk - 1) / chunk : 1;
    if (10 * pairs * used >= 9 * slots) return tiles * kDecodeN;  // >= 90 % of a wave
  }
  return kDecodeN;
}

// The positions [*lo, *hi) split `split` of a token visible over [begin, end) reads.
SABLE_FLASH_HD void split_range(int32_t begin, int32_t end, int32_t chunk, int32_t split, int32_t* lo,
                                int32_t* hi) {
  *lo = begin + split * chunk;
  *hi = end < *lo + chunk ? end : *lo + chunk;
  if (*hi < *lo) *hi = *lo;
}

// Splits of a token visible over [begin, end) that hold positions: the others exit at once, and
// the merge reads only these (at least 1, so that an empty token still writes its zero output).
// The launch has the batch's split count (a graph replays one shape); the work follows lengths.
SABLE_FLASH_HD int32_t decode_used_splits(int32_t begin, int32_t end, int32_t chunk) {
  const int32_t used = end > begin ? (end - begin + chunk - 1) / chunk : 0;
  return used > 1 ? used : 1;
}

// Tokens the decode kernel serves: the one new token of every sequence that has exactly one
// (padding sequences of a decode batch included). `qo_indptr` [B+1].
inline std::vector<int32_t> decode_token_list(const int32_t* qo_indptr, int32_t num_seqs) {
  std::vector<int32_t> out;
  for (int32_t s = 0; s < num_seqs; ++s)
    if (qo_indptr[s + 1] - qo_indptr[s] == 1) out.push_back(qo_indptr[s]);
  return out;
}

}  // namespace sable::attention::flash
