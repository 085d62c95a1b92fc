// The host side of the cascade (shared-prefix) decode pass: which decode sequences form groups,
// and the pass's work list (index math in cascade_schedule.h). Pure C++, checked on the CPU by
// tests/unit/attention_flash_cascade_test.cpp.
//
// The radix cache gives sequences with a common prompt prefix the same page ids. In a decode-only
// batch, plan() sorts the decode sequences by the pages of their first kCascadeMinShared
// positions, so that lists sharing at least that many sit side by side, and cuts the order into
// groups: runs whose neighbours share at least kCascadeMinShared positions. A group's shared length
// is the smallest neighbour overlap in it, which is the common prefix of the whole group (prefixes
// form a tree); a deeper sharing inside a group is not exploited. A member's own position is never
// shared: its K/V are written by the decode kernel of the same step, so the shared length stays
// below every member's kv_len. Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "cascade_schedule.h"
#include "sable/attention.h"

namespace sable::attention::flash {

struct CascadeGroup {
  int32_t shared = 0;           // positions [0, shared) read once for all members
  std::vector<int32_t> tokens;  // batch token indices
};

// Groups of decode tokens whose page lists share >= min_shared positions. `decode` lists the
// tokens, seq[t] their sequence; only sequences without a sliding window may be passed.
inline std::vector<CascadeGroup> find_cascade_groups(const SableAttentionBatch& b,
                                                     int32_t page_size,
                                                     std::span<const int32_t> decode,
                                                     std::span<const int32_t> seq,
                                                     int32_t min_shared) {
  struct Cand {
    int32_t token, limit, n_pages;
    const int32_t* pages;
  };
  std::vector<Cand> c;
  for (int32_t t : decode) {
    const int32_t s = seq[t], limit = b.kv_lens[s] - 1;  // the token's own position is not shared
    if (limit < min_shared) continue;
    c.push_back({t, limit, (limit + page_size - 1) / page_size, b.kv_indices + b.kv_indptr[s]});
  }
  // Sorted by the pages of the first min_shared positions (every candidate has them): lists that
  // share that many positions have equal keys, so they sit side by side, and neighbours with
  // different keys share fewer. Comparing only the key keeps the sort cheap at page size 1
  // (256 sequences x 2,300 pages a step).
  const int32_t key = (min_shared + page_size - 1) / page_size;
  std::sort(c.begin(), c.end(), [key](const Cand& a, const Cand& z) {
    const int cmp = std::memcmp(a.pages, z.pages, sizeof(int32_t) * key);
    return cmp != 0 ? cmp < 0 : a.token < z.token;
  });
  auto overlap = [&](const Cand& a, const Cand& z) {  // memcmp by blocks, then the last block
    constexpr int32_t kBlock = 64;
    const int32_t n = std::min(a.n_pages, z.n_pages);
    int32_t common = 0;
    while (common + kBlock <= n &&
           std::memcmp(a.pages + common, z.pages + common, sizeof(int32_t) * kBlock) == 0)
      common += kBlock;
    while (common < n && a.pages[common] == z.pages[common]) ++common;
    return std::min({common * page_size, a.limit, z.limit});
  };
  std::vector<CascadeGroup> groups;
  for (size_t i = 0; i < c.size();) {
    size_t j = i + 1;
    int32_t shared = c[i].limit;
    for (; j < c.size(); ++j) {
      const int32_t o = overlap(c[j - 1], c[j]);
      if (o < min_shared) break;
      shared = std::min(shared, o);
    }
    if (j - i >= 2) {
      CascadeGroup g;
      g.shared = shared;
      for (size_t k = i; k < j; ++k) g.tokens.push_back(c[k].token);
      groups.push_back(std::move(g));
    }
    i = j;
  }
  return groups;
}

// Chunks per group: enough items for two CTAs per SM over all KV heads, each chunk at least
// kCascadeMinChunk positions, at most kMaxCascadeChunks.
inline int32_t cascade_chunks(int32_t row_tiles, int32_t kv_heads, int32_t num_sms) {
  const int64_t base = std::max<int64_t>(int64_t(row_tiles) * kv_heads, 1);
  const int64_t want = (4 * int64_t(num_sms) + base - 1) / base;
  return static_cast<int32_t>(std::clamp<int64_t>(want, 1, kMaxCascadeChunks));
}

// The work list of the shared pass and, per token, its own range start and shared chunk count.
struct CascadePlan {
  std::vector<int32_t> items;    // kCascadeItemWords per item
  std::vector<int32_t> members;  // batch token indices, in item order
  int32_t num_items = 0;
};

// Fills own_begin[t] (= the group's shared length) and chunks[t] (shared partials to merge) for
// every member; other tokens keep chunks[t] = 0. Requires every group size >= 2 and group <= 16.
inline CascadePlan build_cascade_plan(const std::vector<CascadeGroup>& groups, int32_t group,
                                      int32_t kv_heads, int32_t num_sms,
                                      std::span<int32_t> own_begin, std::span<int32_t> chunks) {
  CascadePlan plan;
  const int32_t per_item = cascade_members_per_item(group);
  int32_t row_tiles = 0;
  for (const CascadeGroup& g : groups)
    row_tiles += (static_cast<int32_t>(g.tokens.size()) + per_item - 1) / per_item;
  const int32_t want = cascade_chunks(row_tiles, kv_heads, num_sms);
  for (const CascadeGroup& g : groups) {
    const int32_t n_chunks = std::clamp(g.shared / kCascadeMinChunk, 1, want);
    // Chunk length in whole KV tiles; the last chunk takes the rest.
    const int32_t tiles = (g.shared + kCascadeN - 1) / kCascadeN;
    const int32_t len = (tiles + n_chunks - 1) / n_chunks * kCascadeN;
    const int32_t used = (g.shared + len - 1) / len;
    const auto m = static_cast<int32_t>(g.tokens.size());
    for (int32_t t : g.tokens) {
      own_begin[t] = g.shared;
      chunks[t] = used;
    }
    for (int32_t m0 = 0; m0 < m; m0 += per_item) {
      const auto first = static_cast<int32_t>(plan.members.size());
      const int32_t n = std::min(per_item, m - m0);
      plan.members.insert(plan.members.end(), g.tokens.begin() + m0, g.tokens.begin() + m0 + n);
      for (int32_t k = 0; k < used; ++k) {
        const int32_t lo = k * len, hi = std::min(g.shared, lo + len);
        plan.items.insert(plan.items.end(), {first, n, lo, hi, k});
        ++plan.num_items;
      }
    }
  }
  return plan;
}

}  // namespace sable::attention::flash
