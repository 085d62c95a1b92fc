// The index math of the cascade (shared-prefix) decode pass (cascade_attention.cu), shared by host
// and device so that tests/unit/attention_flash_cascade_test.cpp checks it on the CPU; the host
// plan (groups from page lists, the work list) is in cascade_plan.h.
//
// The shared pass: a work item is (group row tile, chunk of the shared positions). Its 64 MMA rows
// are the q heads of one KV head for up to 64 / group members (row r: member r / group, q head
// r % group), so one CTA reads each shared K/V row once for all of them; a group of 16 members
// with Llama-8B's 4 q heads per KV head fills one tile. Each item writes per-member partials
// (acc, m, l) to slot `chunk` of the cascade partials; the decode kernel then serves each member's
// own positions [shared, kv_len) as usual and its merge folds the shared partials in.
// The number of items is bounded by max_cascade_items(num_decode), a function of the batch shape,
// so a captured CUDA graph keeps one grid; unused items exit at once.
// Thread-safety: pure functions.
#pragma once

#include <cmath>
#include <cstdint>

#include "decode_schedule.h"

namespace sable::attention::flash {

constexpr int32_t kCascadeWarps = 4;
constexpr int32_t kCascadeRows = 16 * kCascadeWarps;  // MMA rows per item: members x group q heads
constexpr int32_t kCascadeN = 64;                     // KV positions per tile
constexpr int32_t kMaxCascadeChunks = 4;              // shared partials per member
constexpr int32_t kCascadeMinShared = 256;  // shorter shared prefixes are not worth a pass
constexpr int32_t kCascadeMinChunk = 512;   // positions per chunk, at least
constexpr int32_t kCascadeItemWords = 5;
constexpr int32_t kMaxMergeParts = kMaxSplits + kMaxCascadeChunks;  // partials one merge reads

struct CascadeItem {
  int32_t member0;  // first entry of the item's members in the member list
  int32_t members;  // 1 .. kCascadeRows / group
  int32_t lo, hi;   // shared positions the item reads
  int32_t chunk;    // the partial slot it writes for each member
};

SABLE_FLASH_HD int32_t cascade_members_per_item(int32_t group) {
  return kCascadeRows / group;
}

// A group of m >= 2 members takes ceil(m * group / 64) <= m / 2 row tiles (group <= 16), each in
// at most kMaxCascadeChunks chunks: at most 2 items per decode token.
SABLE_FLASH_HD int32_t max_cascade_items(int32_t num_decode) {
  return num_decode >= 2 ? (kMaxCascadeChunks / 2) * num_decode : 0;
}

SABLE_FLASH_HD CascadeItem load_cascade_item(const int32_t* list, int32_t i) {
  const int32_t* w = list + static_cast<int64_t>(i) * kCascadeItemWords;
  return CascadeItem{w[0], w[1], w[2], w[3], w[4]};
}

// Row r of an item: its member and q head within the KV head's group; false for padding rows.
SABLE_FLASH_HD bool cascade_row(int32_t r, int32_t group, int32_t members, int32_t* member,
                                int32_t* head) {
  *member = r / group;
  *head = r % group;
  return r < members * group;
}

// How an item's rows are shared among the CTA's warps. Each warp owns a block of 16 rows; when an
// item has fewer than kCascadeWarps blocks (groups of a few members: 4 members of Llama-8B are 16
// rows), the spare warps take a share of every K/V tile's positions instead of idling, so the
// pass keeps 4 warps of MMA and softmax busy per CTA whatever the group size. `parts` warps share
// one row block (4, 2 or 1); warp w owns row block w / parts and positions
// [part * kCascadeN / parts, + kCascadeN / parts) of each tile, part = w % parts. A warp whose row
// block holds no rows (3 blocks: the fourth warp) is idle.
struct CascadeWarpRole {
  int32_t parts;     // warps sharing the row block: 1, 2 or 4
  int32_t row_base;  // first row of the warp's block
  int32_t pos0;      // first tile position the warp reads
  bool busy;
};

SABLE_FLASH_HD CascadeWarpRole cascade_warp_role(int32_t rows, int32_t warp) {
  const int32_t blocks = (rows + 15) / 16;
  const int32_t parts = blocks <= 1 ? 4 : blocks == 2 ? 2 : 1;
  const int32_t row_base = (warp / parts) * 16;
  return CascadeWarpRole{parts, row_base, (warp % parts) * (kCascadeN / parts), row_base < rows};
}

// Folds the partial softmax states of `parts` warps for one row and one output column: warp w's
// running max m[w] (log2 domain; -inf when it saw no position), quad-reduced sum l[w] and
// unnormalised accumulator o[w * o_stride]. Returns the accumulator relative to the common max
// and writes that max (-inf when no warp saw a position) and the folded sum.
SABLE_FLASH_HD float cascade_fold(int32_t parts, const float* m, const float* l, const float* o,
                                  int32_t o_stride, float* m_out, float* l_out) {
  float mx = -INFINITY;
  for (int32_t w = 0; w < parts; ++w) mx = fmaxf(mx, m[w]);
  float acc = 0.0f, sum = 0.0f;
  for (int32_t w = 0; w < parts; ++w) {
    if (m[w] == -INFINITY) continue;  // nothing seen (its l and o are 0)
    const float f = exp2f(m[w] - mx);
    acc += f * o[w * o_stride];
    sum += f * l[w];
  }
  *m_out = mx;
  *l_out = sum;
  return acc;
}

// The partial slot of (token, q head, chunk) in the cascade partials [T, Hq, kMaxCascadeChunks].
SABLE_FLASH_HD int64_t cascade_slot(int32_t token, int32_t q_heads, int32_t qh, int32_t chunk) {
  return (int64_t(token) * q_heads + qh) * kMaxCascadeChunks + chunk;
}

}  // namespace sable::attention::flash
