// The cascade (shared-prefix) decode pass of the "flash" plugin
// (plugins/attention/flash/cascade_plan.h, cascade_schedule.h, cascade_attention.cu), checked on
// the CPU: groups are found from the page lists for page sizes 1 and 16 (shared prefixes not
// page-aligned, a member whose whole context is the prefix, a chat template shared by everyone, no
// sharing at all), the work list gives every member's q heads exactly one row per chunk and the
// chunks cover the shared positions once, the launch bound depends on the batch shape alone, and an
// emulation of the two passes (the cascade items' partials by (member, head) row, the members' own
// splits, the decode kernel's merge order: splits, then shared chunks) matches a naive fp64
// attention; the warps of a small item split each tile's positions and fold their states. The new
// token's pool row is poisoned: neither pass may read it from the pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "plugins/attention/flash/flash_plan.h"
#include "tests/unit/flash_emulation.h"

namespace sable::attention::flash {
namespace {

using namespace emulation;

// A decode batch from explicit page lists: one new token per sequence (token t = sequence t).
struct Seqs {
  std::vector<int32_t> qo{0}, indptr{0}, indices, lens;
  void add(const std::vector<int32_t>& pages, int32_t len) {
    qo.push_back(qo.back() + 1);
    indices.insert(indices.end(), pages.begin(), pages.end());
    indptr.push_back(static_cast<int32_t>(indices.size()));
    lens.push_back(len);
  }
  SableAttentionBatch view() const {
    SableAttentionBatch b{};
    b.struct_size = sizeof(b);
    b.num_seqs = static_cast<int32_t>(lens.size());
    b.num_tokens = qo.back();
    b.is_decode_only = 1;
    b.qo_indptr = qo.data();
    b.kv_indptr = indptr.data();
    b.kv_indices = indices.data();
    b.kv_lens = lens.data();
    return b;
  }
};

std::vector<int32_t> pages(int32_t first, int32_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}
std::vector<int32_t> cat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The groups as {shared, sorted tokens}, ordered by first token.
std::map<int32_t, std::pair<int32_t, std::vector<int32_t>>> groups_of(const Seqs& s,
                                                                      int32_t page_size) {
  std::vector<int32_t> ids(s.lens.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::map<int32_t, std::pair<int32_t, std::vector<int32_t>>> out;
  for (CascadeGroup g : find_cascade_groups(s.view(), page_size, ids, ids, kCascadeMinShared)) {
    std::sort(g.tokens.begin(), g.tokens.end());
    out[g.tokens[0]] = {g.shared, g.tokens};
  }
  return out;
}
using G = std::pair<int32_t, std::vector<int32_t>>;

TEST(FlashCascadeGroups, PageSize16) {
  Seqs s;
  const auto a = pages(0, 128);  // a 2,048-token system prompt
  s.add(cat(a, {1000}), 2048 + 10);
  s.add(pages(300, 50), 790);  // shares nothing
  s.add(cat(a, {1001, 1002}), 2048 + 21);
  s.add(cat(a, {1003}), 2049);  // its whole context is the prompt: the new token is its own
  const auto b = pages(200, 40);
  s.add(cat(b, {1004}), 640 + 3);
  s.add({}, 0);  // padding
  s.add(cat(b, {1005, 1006}), 640 + 30);
  s.add(cat(pages(0, 10), pages(2000, 30)), 630);  // only 160 tokens of the prompt: too few
  const auto g = groups_of(s, 16);
  EXPECT_EQ(g.size(), 2u);
  EXPECT_EQ(g.at(0), (G{2048, {0, 2, 3}}));
  EXPECT_EQ(g.at(4), (G{640, {4, 6}}));
}

TEST(FlashCascadeGroups, PageSize1PrefixNotAligned) {
  Seqs s;
  const auto a = pages(0, 301);
  s.add(cat(a, pages(5000, 49)), 350);
  s.add(cat(a, {6000}), 302);  // whole context shared
  s.add(cat(a, pages(7000, 119)), 420);
  const auto b = pages(1000, 200);  // 200 shared: below kCascadeMinShared
  s.add(cat(b, pages(8000, 100)), 300);
  s.add(cat(b, pages(9000, 100)), 300);
  const auto g = groups_of(s, 1);
  EXPECT_EQ(g.size(), 1u);
  EXPECT_EQ(g.at(0), (G{301, {0, 1, 2}}));
}

TEST(FlashCascadeGroups, SharedLengthStopsBeforeTheShortestMembersOwnPosition) {
  Seqs s;  // page 16, 20 shared pages; one member's context ends mid-page 18
  s.add(cat(pages(0, 20), {500}), 330);
  s.add(pages(0, 19), 300);  // positions 0..298 shared, 299 is its new token
  s.add(cat(pages(0, 20), {501, 502}), 350);
  EXPECT_EQ(groups_of(s, 16).at(0), (G{299, {0, 1, 2}}));
}

TEST(FlashCascadeGroups, TemplateSharedByAllKeepsGroupsApart) {
  Seqs s;  // every prompt opens with page 7 (a chat template); two groups share 32 more pages
  for (int32_t i = 0; i < 6; ++i)
    s.add(cat(cat({7}, pages(i % 2 == 0 ? 100 : 200, 32)), pages(1000 + 10 * i, 3)), 33 * 16 + 40);
  const auto g = groups_of(s, 16);
  EXPECT_EQ(g.size(), 2u);
  EXPECT_EQ(g.at(0), (G{528, {0, 2, 4}}));
  EXPECT_EQ(g.at(1), (G{528, {1, 3, 5}}));
}

TEST(FlashCascadeGroups, AGroupSharesItsCommonPrefix) {
  Seqs s;  // page 1: tokens 0 and 2 share 2,000 positions, token 1 only the first 300 of them
  s.add(cat(pages(0, 2000), pages(5000, 50)), 2050);
  s.add(cat(pages(0, 300), pages(6000, 100)), 400);
  s.add(cat(pages(0, 2000), pages(7000, 20)), 2020);
  s.add(cat(pages(0, 256), {8000}), 257);  // exactly kCascadeMinShared shareable positions
  EXPECT_EQ(groups_of(s, 1).at(0), (G{256, {0, 1, 2, 3}}));
}

TEST(FlashCascadeGroups, NoSharingNoGroups) {
  Seqs s;
  for (int32_t i = 0; i < 20; ++i) s.add(pages(100 * i, 90), 1400 + i);
  EXPECT_TRUE(groups_of(s, 16).empty());
}

TEST(FlashCascadePlan, ItemsGiveEveryMemberHeadOneRowPerChunk) {
  std::mt19937 rng(5);
  for (int it = 0; it < 200; ++it) {
    const int32_t group = std::vector<int32_t>{1, 2, 4, 7, 8, 16}[rng() % 6];
    const int32_t kv_heads = 1 << (rng() % 4), sms = rng() % 2 ? 132 : 8;
    const int32_t T = 40 + static_cast<int32_t>(rng() % 300);
    std::vector<int32_t> perm(static_cast<size_t>(T));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<CascadeGroup> groups;
    for (size_t next = 0; next + 2 <= perm.size() && rng() % 6 != 0;) {
      const size_t m = std::min<size_t>(2 + rng() % 39, perm.size() - next);
      if (m < 2) break;
      CascadeGroup g;
      g.shared = kCascadeMinShared + static_cast<int32_t>(rng() % 5000);
      g.tokens.assign(perm.begin() + next, perm.begin() + next + m);
      groups.push_back(g);
      next += m;
    }
    std::vector<int32_t> own(static_cast<size_t>(T), -1), chunks(static_cast<size_t>(T), 0);
    const CascadePlan plan = build_cascade_plan(groups, group, kv_heads, sms, own, chunks);
    ASSERT_LE(plan.num_items, max_cascade_items(T));
    ASSERT_EQ(plan.items.size(), size_t(plan.num_items) * kCascadeItemWords);
    // seen[(token, head)] = the (lo, hi) of each chunk slot.
    std::map<std::pair<int32_t, int32_t>, std::map<int32_t, std::pair<int32_t, int32_t>>> seen;
    for (int32_t i = 0; i < plan.num_items; ++i) {
      const CascadeItem item = load_cascade_item(plan.items.data(), i);
      ASSERT_GE(item.members, 1);
      ASSERT_LE(item.members * group, kCascadeRows);
      ASSERT_LT(item.lo, item.hi);
      for (int32_t r = 0; r < kCascadeRows; ++r) {
        int32_t mb = 0, h = 0;
        if (!cascade_row(r, group, item.members, &mb, &h)) continue;
        ASSERT_LT(h, group);
        const int32_t t = plan.members[size_t(item.member0 + mb)];
        const bool fresh =
            seen[{t, h}].emplace(item.chunk, std::make_pair(item.lo, item.hi)).second;
        ASSERT_TRUE(fresh) << "two rows for token " << t << " head " << h << " chunk "
                           << item.chunk;
      }
    }
    for (const CascadeGroup& g : groups)
      for (int32_t t : g.tokens) {
        EXPECT_EQ(own[t], g.shared);
        ASSERT_GE(chunks[t], 1);
        ASSERT_LE(chunks[t], kMaxCascadeChunks);
        for (int32_t h = 0; h < group; ++h) {
          const auto& c = seen[{t, h}];
          ASSERT_EQ(static_cast<int32_t>(c.size()), chunks[t]);
          int32_t pos = 0;  // slots 0..chunks-1 tile [0, shared) in order
          for (const auto& [k, range] : c) {
            EXPECT_EQ(range.first, pos) << "chunk " << k;
            pos = range.second;
          }
          EXPECT_EQ(pos, g.shared);
        }
      }
    int32_t members = 0;
    for (const CascadeGroup& g : groups) members += static_cast<int32_t>(g.tokens.size());
    EXPECT_EQ(static_cast<int32_t>(std::count(chunks.begin(), chunks.end(), 0)), T - members);
  }
  // The gsp bench at 256 sequences: 16 groups of 16, 4 q heads per KV head: one row tile per
  // group, 4 chunks of 512 for 512 CTAs over 8 KV heads.
  std::vector<CascadeGroup> gsp(16);
  for (int32_t g = 0; g < 16; ++g) {
    gsp[g].shared = 2048;
    for (int32_t m = 0; m < 16; ++m) gsp[g].tokens.push_back(16 * g + m);
  }
  std::vector<int32_t> own(256), chunks(256);
  const CascadePlan plan = build_cascade_plan(gsp, 4, 8, 132, own, chunks);
  EXPECT_EQ(plan.num_items, 64);
  EXPECT_EQ(load_cascade_item(plan.items.data(), 1).lo, 512);
  EXPECT_EQ(load_cascade_item(plan.items.data(), 3).hi, 2048);
}

PlanConfig cascade_config(int32_t hq, int32_t hk, int32_t d, int32_t page_size, int32_t sms) {
  PlanConfig c;
  c.page_size = page_size;
  c.q_heads = hq;
  c.kv_heads = hk;
  c.head_dim = d;
  c.num_sms = sms;
  c.split_rows = 256;
  c.decode_kernel = true;
  c.cascade = true;
  return c;
}

struct Planned {
  std::vector<int32_t> seq, begin, end, slot, decode, casc_begin, casc_chunks;
  PlanArrays arrays;
  PlanShape shape;
};

Planned plan(const Seqs& s, const PlanConfig& c) {
  const auto T = static_cast<size_t>(s.qo.back());
  Planned p;
  for (auto* v : {&p.seq, &p.begin, &p.end, &p.slot, &p.decode, &p.casc_begin, &p.casc_chunks})
    v->assign(T, -7);
  p.arrays = PlanArrays{p.seq, p.begin, p.end, p.slot, p.decode, {}, p.casc_begin, p.casc_chunks};
  p.shape = plan_batch(s.view(), c, p.arrays);
  return p;
}

TEST(FlashCascadePlan, LaunchBoundFollowsTheShapeAlone) {
  Seqs shared, apart;
  for (int32_t i = 0; i < 8; ++i) {
    shared.add(cat(pages(0, 64), {1000 + i}), 1024 + 1 + i);
    apart.add(pages(100 * i, 65), 1024 + 1 + i);
  }
  const Planned a = plan(shared, cascade_config(32, 8, 128, 16, 132));
  const Planned b = plan(apart, cascade_config(32, 8, 128, 16, 132));
  ASSERT_EQ(a.shape.error, nullptr);
  EXPECT_EQ(a.shape.cascade_items, max_cascade_items(8));
  EXPECT_EQ(a.shape.cascade_items, b.shape.cascade_items);
  EXPECT_EQ(a.shape.splits, b.shape.splits);
  EXPECT_GT(a.arrays.cascade.num_items, 0);
  EXPECT_EQ(b.arrays.cascade.num_items, 0);
  EXPECT_EQ(b.casc_chunks, std::vector<int32_t>(8, 0));  // stale values are cleared
  for (int32_t t = 0; t < 8; ++t) {
    EXPECT_EQ(a.casc_begin[t], 1024);
    EXPECT_EQ(a.begin[t], 0) << "the fallback kernels read begin: it keeps the whole range";
  }
  // No pass: switched off, sliding window, per-token kernels, batch 1, more rows than partials.
  PlanConfig off = cascade_config(32, 8, 128, 16, 132);
  off.cascade = false;
  EXPECT_EQ(plan(shared, off).shape.cascade_items, 0);
  PlanConfig window = cascade_config(32, 8, 128, 16, 132);
  window.window = 4096;
  EXPECT_EQ(plan(shared, window).shape.cascade_items, 0);
  PlanConfig legacy = cascade_config(32, 8, 128, 16, 132);
  legacy.decode_kernel = false;
  EXPECT_EQ(plan(shared, legacy).shape.cascade_items, 0);
  PlanConfig few = cascade_config(32, 8, 128, 16, 132);
  few.split_rows = 4;
  EXPECT_EQ(plan(shared, few).shape.cascade_items, 0);
  Seqs one;
  one.add(pages(0, 65), 1030);
  EXPECT_EQ(plan(one, cascade_config(32, 8, 128, 16, 132)).shape.cascade_items, 0);
}

// ---- The two passes and the merge, emulated per (token, q head) row ----

struct Part {
  float m = -INFINITY, l = 0.0f;
  std::vector<float> acc;
};

// One row's partial over positions [lo, hi) as the kernels compute it: 64-position tiles, log2
// domain online softmax in fp32, P rounded to bf16 for P·V. The token's own position (new_pos)
// comes from its inputs, every other from the pool through the page list. A warp that takes a
// share of each tile (the cascade pass's small items) reads positions [share0, share0 + share) of
// every tile.
Part row_partial(const float* q, const float* k_new, const float* v_new, const int32_t* pg,
                 int32_t page_size, int32_t hk, int32_t kvh, int32_t d, int32_t new_pos, int32_t lo,
                 int32_t hi, const std::vector<float>& kpool, const std::vector<float>& vpool,
                 int32_t share0 = 0, int32_t share = kCascadeN) {
  const float scale_log2 = 1.0f / std::sqrt(float(d)) * 1.4426950408889634f;
  Part p;
  p.acc.assign(size_t(d), 0.0f);
  for (int32_t tile = lo; tile + share0 < hi; tile += kCascadeN) {
    const int32_t k0 = tile + share0, k1 = std::min(hi, k0 + share);
    std::vector<float> s;
    for (int32_t pos = k0; pos < k1; ++pos) {
      const float* kr =
          pos == new_pos ? k_new : &kpool[kv_row_offset(pg, page_size, pos, hk, kvh, d)];
      float dot = 0.0f;
      for (int32_t c = 0; c < d; ++c) dot += q[c] * kr[c];
      s.push_back(dot * scale_log2);
    }
    const float m_new = std::max(p.m, *std::max_element(s.begin(), s.end()));
    const float corr = std::exp2(p.m - m_new);
    p.l *= corr;
    for (float& a : p.acc) a *= corr;
    for (int32_t pos = k0; pos < k1; ++pos) {
      const float e = std::exp2(s[pos - k0] - m_new);
      p.l += e;
      const float* vr =
          pos == new_pos ? v_new : &vpool[kv_row_offset(pg, page_size, pos, hk, kvh, d)];
      for (int32_t c = 0; c < d; ++c) p.acc[c] += bf16_round(e) * vr[c];
    }
    p.m = m_new;
  }
  return p;
}

// Sequences as (shared group or -1, kv_len); group g's first shared_len[g] positions sit on
// common pages, the rest on the sequence's own.
void run_cascade(int32_t hq, int32_t hk, int32_t d, int32_t page_size, int32_t sms,
                 const std::vector<int32_t>& shared_len,
                 const std::vector<std::pair<int32_t, int32_t>>& seqs) {
  SCOPED_TRACE(testing::Message() << "hq=" << hq << " hk=" << hk << " d=" << d
                                  << " page=" << page_size);
  std::mt19937 rng(17 + d + page_size + hq);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  int32_t next_page = 0;
  std::vector<std::vector<int32_t>> common;
  for (int32_t len : shared_len) {
    common.push_back(pages(next_page, len / page_size));  // the shared pages are whole pages
    next_page += len / page_size;
  }
  Seqs s;
  for (auto [g, len] : seqs) {
    std::vector<int32_t> pg = g >= 0 ? common[g] : std::vector<int32_t>{};
    const int32_t own = (len + page_size - 1) / page_size - static_cast<int32_t>(pg.size());
    s.add(cat(pg, pages(next_page, own)), len);
    next_page += own;
  }
  const auto B = static_cast<int32_t>(seqs.size());
  const size_t slots = size_t(next_page) * page_size;
  std::vector<float> kpool(slots * hk * d), vpool(kpool.size()), q(size_t(B) * hq * d),
      kn(size_t(B) * hk * d), vn(kn.size());
  for (auto* buf : {&kpool, &vpool, &q, &kn, &vn})
    for (float& x : *buf) x = bf16_round(nd(rng));
  std::vector<float> ref_k = kpool,
                     ref_v = vpool;  // the new rows where they belong, for the reference
  for (int32_t t = 0; t < B; ++t)
    for (int32_t h = 0; h < hk; ++h) {
      const int64_t off =
          kv_row_offset(s.indices.data() + s.indptr[t], page_size, s.lens[t] - 1, hk, h, d);
      for (int32_t c = 0; c < d; ++c) {
        ref_k[off + c] = kn[(size_t(t) * hk + h) * d + c];
        ref_v[off + c] = vn[(size_t(t) * hk + h) * d + c];
        kpool[off + c] = vpool[off + c] = std::nanf("");
      }
    }
  const Planned p = plan(s, cascade_config(hq, hk, d, page_size, sms));
  ASSERT_EQ(p.shape.error, nullptr);
  ASSERT_GT(p.arrays.cascade.num_items, 0);
  const int32_t G = hq / hk;
  auto page_list = [&](int32_t t) { return s.indices.data() + s.indptr[t]; };
  auto partial = [&](int32_t t, int32_t qh, int32_t lo, int32_t hi) {
    return row_partial(&q[(size_t(t) * hq + qh) * d], &kn[(size_t(t) * hk + qh / G) * d],
                       &vn[(size_t(t) * hk + qh / G) * d], page_list(t), page_size, hk, qh / G, d,
                       s.lens[t] - 1, lo, hi, kpool, vpool);
  };
  // The cascade pass: each item row reads the first member's pages (the shared ones).
  std::map<int64_t, Part> casc;
  for (int32_t i = 0; i < p.arrays.cascade.num_items; ++i) {
    const CascadeItem item = load_cascade_item(p.arrays.cascade.items.data(), i);
    const int32_t* members = p.arrays.cascade.members.data() + item.member0;
    for (int32_t kvh = 0; kvh < hk; ++kvh)
      for (int32_t r = 0; r < kCascadeRows; ++r) {
        int32_t mb = 0, h = 0;
        if (!cascade_row(r, G, item.members, &mb, &h)) continue;
        const int32_t t = members[mb], qh = kvh * G + h;
        // The warps of the row's block, each over its share of every tile, folded at the end.
        const int32_t rows = item.members * G;
        const int32_t parts = cascade_warp_role(rows, 0).parts;
        std::vector<float> wm, wl, wo;
        for (int32_t w = 0; w < kCascadeWarps; ++w) {
          const CascadeWarpRole role = cascade_warp_role(rows, w);
          if (role.row_base != r / 16 * 16) continue;
          const Part part = row_partial(&q[(size_t(t) * hq + qh) * d], nullptr, nullptr,
                                        page_list(members[0]), page_size, hk, kvh, d, -1, item.lo,
                                        item.hi, kpool, vpool, role.pos0, kCascadeN / parts);
          wm.push_back(part.m);
          wl.push_back(part.l);
          wo.insert(wo.end(), part.acc.begin(), part.acc.end());
        }
        ASSERT_EQ(static_cast<int32_t>(wm.size()), parts);
        Part part;
        for (int32_t c = 0; c < d; ++c)
          part.acc.push_back(
              cascade_fold(parts, wm.data(), wl.data(), &wo[size_t(c)], d, &part.m, &part.l));
        ASSERT_TRUE(casc.emplace(cascade_slot(t, hq, qh, item.chunk), std::move(part)).second);
      }
  }
  // The decode kernel: own splits, then the merge (splits first, then the shared chunks).
  std::vector<float> got(q.size()), want(q.size());
  for (int32_t t = 0; t < B; ++t) {
    const int32_t chunks = p.casc_chunks[t], begin = chunks > 0 ? p.casc_begin[t] : p.begin[t];
    const int32_t used = decode_used_splits(begin, p.end[t], p.shape.chunk);
    ASSERT_LE(used, p.shape.splits);
    for (int32_t qh = 0; qh < hq; ++qh) {
      std::vector<Part> parts;
      for (int32_t sp = 0; sp < used; ++sp) {
        int32_t lo = 0, hi = 0;
        split_range(begin, p.end[t], p.shape.chunk, sp, &lo, &hi);
        parts.push_back(partial(t, qh, lo, hi));
      }
      for (int32_t c = 0; c < chunks; ++c) parts.push_back(casc.at(cascade_slot(t, hq, qh, c)));
      float mx = -INFINITY, sum = 0.0f;
      for (const Part& pt : parts)
        if (pt.l > 0.0f) mx = std::max(mx, pt.m);
      for (const Part& pt : parts) sum += pt.l > 0.0f ? pt.l * std::exp2(pt.m - mx) : 0.0f;
      for (int32_t c = 0; c < d; ++c) {
        float acc = 0.0f;
        for (const Part& pt : parts)
          if (pt.l > 0.0f) acc += std::exp2(pt.m - mx) / sum * pt.acc[c];
        got[(size_t(t) * hq + qh) * d + c] = acc;
      }
    }
    naive_attention(&q[size_t(t) * hq * d], hq, hk, d, page_list(t), page_size, 0, s.lens[t] - 1,
                    ref_k, ref_v, &want[size_t(t) * hq * d]);
  }
  expect_close(got, want);
}

TEST(FlashCascadeWarps, EveryRowAndTilePositionHasOneWarp) {
  for (int32_t rows = 1; rows <= kCascadeRows; ++rows) {
    std::vector<int32_t> seen(size_t(rows) * kCascadeN, 0);
    int32_t busy = 0;
    for (int32_t w = 0; w < kCascadeWarps; ++w) {
      const CascadeWarpRole role = cascade_warp_role(rows, w);
      ASSERT_TRUE(role.parts == 1 || role.parts == 2 || role.parts == 4);
      if (!role.busy) continue;
      ++busy;
      for (int32_t r = role.row_base; r < std::min(rows, role.row_base + 16); ++r)
        for (int32_t k = role.pos0; k < role.pos0 + kCascadeN / role.parts; ++k)
          ++seen[size_t(r) * kCascadeN + k];
    }
    for (int32_t v : seen) ASSERT_EQ(v, 1) << rows << " rows";
    // No warp idles unless the rows come in exactly three blocks of 16.
    EXPECT_EQ(busy, (rows + 15) / 16 == 3 ? 3 : 4) << rows << " rows";
  }
}

TEST(FlashCascadeWarps, FoldOfSharesIsTheOnePassSoftmax) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int32_t parts : {2, 4})
    for (int32_t valid : {64, 40, 9}) {  // positions past `valid` are masked (a last tile)
      std::vector<float> s(64), v(64);
      for (int32_t k = 0; k < 64; ++k) s[k] = nd(rng), v[k] = nd(rng);
      float m_all = -INFINITY, l_all = 0.0f, o_all = 0.0f;
      for (int32_t k = 0; k < valid; ++k) m_all = std::max(m_all, s[k]);
      for (int32_t k = 0; k < valid; ++k)
        l_all += std::exp2(s[k] - m_all), o_all += std::exp2(s[k] - m_all) * v[k];
      std::vector<float> m(parts, -INFINITY), l(parts, 0.0f), o(parts, 0.0f);
      const int32_t share = 64 / parts;
      for (int32_t w = 0; w < parts; ++w) {
        for (int32_t k = w * share; k < std::min(valid, (w + 1) * share); ++k)
          m[w] = std::max(m[w], s[k]);
        for (int32_t k = w * share; k < std::min(valid, (w + 1) * share); ++k)
          l[w] += std::exp2(s[k] - m[w]), o[w] += std::exp2(s[k] - m[w]) * v[k];
      }
      float m_got = 0.0f, l_got = 0.0f;
      const float o_got = cascade_fold(parts, m.data(), l.data(), o.data(), 1, &m_got, &l_got);
      EXPECT_EQ(m_got, m_all);
      EXPECT_NEAR(l_got, l_all, 1e-5f * l_all);
      EXPECT_NEAR(o_got / l_got, o_all / l_all, 1e-5f * (1.0f + std::fabs(o_all / l_all)));
    }
}

TEST(FlashCascadeMerge, SharedAndOwnPartialsMatchNaiveAttention) {
  // Llama-8B's group of 4: two groups (one member's whole context is the prefix), a loner; a
  // small "GPU" so the own parts split too.
  run_cascade(8, 2, 64, 16, 2, {592, 1024},
              {{0, 700}, {0, 593}, {-1, 300}, {1, 1100}, {0, 650}, {1, 1025}, {1, 1300}});
  // Qwen-0.5B's group of 7, page size 1, a prefix that is not a tile multiple; batch-shaped
  // splits on 132 SMs.
  run_cascade(14, 2, 64, 1, 132, {301}, {{0, 400}, {0, 302}, {0, 333}});
  // Group 16 (MQA), D 128: 6 members take two row tiles of 4.
  run_cascade(16, 1, 128, 16, 8, {2048},
              {{0, 2100}, {0, 2049}, {0, 2200}, {0, 2060}, {0, 2300}, {0, 2080}, {-1, 64}});
}

}  // namespace
}  // namespace sable::attention::flash
