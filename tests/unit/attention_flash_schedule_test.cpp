// The index math of the "flash" plugin's tensor-core prefill (plugins/attention/flash/
// prefill_schedule.h), checked on the CPU: the work list covers every new token exactly once within
// the grid bound, skipping the mask is only done where nothing is masked, the swizzled shared-memory
// layout is conflict-free for ldmatrix, and a lane-by-lane emulation of the kernel (cp.async gather
// from the pages into swizzled smem, ldmatrix / ldmatrix.trans, mma.sync m16n8k16 with the PTX ISA
// fragment layouts, register-resident P, online softmax in the log2 domain) matches a naive fp64
// attention over random page assignments, GQA, page sizes 1/5/16, sliding windows and padding.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "plugins/attention/flash/prefill_schedule.h"
#include "tests/unit/flash_emulation.h"

namespace sable::attention::flash {
namespace {

struct Batch {
  std::vector<int32_t> qo{0}, kv_lens;
};

// Sequences given as (new tokens, kv_len); kv_len 0 = padding.
Batch make_batch(const std::vector<std::pair<int32_t, int32_t>>& seqs) {
  Batch b;
  for (auto [n, len] : seqs) {
    b.qo.push_back(b.qo.back() + n);
    b.kv_lens.push_back(len);
  }
  return b;
}

void check_work_list(const Batch& b, int32_t window) {
  const auto ns = static_cast<int32_t>(b.kv_lens.size());
  const auto tiles = build_prefill_tiles(b.qo.data(), b.kv_lens.data(), ns, window);
  const int32_t T = b.qo.back();
  EXPECT_LE(static_cast<int32_t>(tiles.size()), max_prefill_tiles(T, ns));
  std::vector<int32_t> covered(static_cast<size_t>(T), 0);
  int32_t prev_work = 1 << 30;
  for (const PrefillTile& t : tiles) {
    ASSERT_GE(t.seq, 0);
    ASSERT_LT(t.seq, ns);
    EXPECT_GE(t.rows, 1);
    EXPECT_LE(t.rows, kBM);
    EXPECT_GE(t.q0, b.qo[t.seq]);
    EXPECT_LE(t.q0 + t.rows, b.qo[t.seq + 1]);
    const int32_t n = b.qo[t.seq + 1] - b.qo[t.seq], len = b.kv_lens[t.seq];
    for (int32_t r = 0; r < t.rows; ++r) {
      ++covered[t.q0 + r];
      // Row r is token q0 + r, at position kv_len - n + (its index within the sequence).
      if (len > 0) EXPECT_EQ(t.pos0 + r, len - n + (t.q0 + r - b.qo[t.seq]));
    }
    if (len == 0) EXPECT_EQ(t.pos0, -1);
    int32_t lo = 0, hi = 0;
    kv_range(t, window, &lo, &hi);
    EXPECT_LE(hi - lo, prev_work) << "heaviest tiles first";
    prev_work = hi - lo;
  }
  for (int32_t c : covered) EXPECT_EQ(c, 1);
}

TEST(FlashPrefillSchedule, WorkListCoversEveryTokenOnce) {
  check_work_list(make_batch({{1000, 1300}}), 0);
  check_work_list(make_batch({{1, 50}, {130, 130}, {64, 64}, {65, 200}, {3, 0}, {7, 7}}), 0);
  check_work_list(make_batch({{200, 500}, {63, 63}}), 100);
  std::mt19937 rng(5);
  for (int it = 0; it < 50; ++it) {
    std::vector<std::pair<int32_t, int32_t>> seqs;
    const int ns = 1 + static_cast<int>(rng() % 8);
    for (int s = 0; s < ns; ++s) {
      const int32_t n = 1 + static_cast<int32_t>(rng() % 300);
      const bool pad = rng() % 6 == 0;
      seqs.push_back({n, pad ? 0 : n + static_cast<int32_t>(rng() % 400)});
    }
    check_work_list(make_batch(seqs), static_cast<int32_t>(rng() % 3) * 37);
  }
}

// The heads a wgmma CTA takes for each GQA group: with partial CTAs, the choices the measured
// rates give (Qwen2.5's group 7 on 4-head CTAs, 4 + 3); without, the most heads that divide the
// group; never above the cap.
TEST(FlashPrefillSchedule, WgmmaHeadsForGroup) {
  const int32_t partial[] = {0, 1, 2, 4, 4, 2, 2, 4, 4}, whole[] = {0, 1, 2, 1, 4, 1, 2, 1, 4};
  for (int32_t g = 1; g <= 8; ++g) {
    EXPECT_EQ(wgmma_heads_for_group(g, 4, true), partial[g]) << "group " << g;
    EXPECT_EQ(wgmma_heads_for_group(g, 4, false), whole[g]) << "group " << g;
  }
  EXPECT_EQ(wgmma_heads_for_group(16, 4, true), 4);
  EXPECT_EQ(wgmma_heads_for_group(7, 2, true), 2);
  EXPECT_EQ(wgmma_heads_for_group(8, 1, true), 1);
  EXPECT_EQ(wgmma_heads_for_group(8, 2, false), 2);
  for (int32_t g = 1; g <= 32; ++g)
    for (int32_t cap : {1, 2, 4})
      for (bool p : {false, true}) {
        const int32_t h = wgmma_heads_for_group(g, cap, p);
        EXPECT_LE(h, cap) << "group " << g;
        if (!p) EXPECT_EQ(g % h, 0) << "group " << g;
      }
}

// The wgmma kernel's K/V pipeline replayed on the host: at every iteration the tile it computes
// has landed (its group is among those cp.async.wait<pending> leaves complete), and the copy it
// issues lands in a stage no tile in use or still in flight holds.
TEST(FlashPrefillSchedule, WgmmaPipelineNeverOverwritesAStageInUse) {
  for (bool overlap : {false, true}) {
    for (int32_t stages = overlap ? 3 : 2; stages <= 4; ++stages) {
      const int32_t lead = wgmma_lead(stages, overlap), pending = wgmma_pending(stages, overlap);
      ASSERT_GE(lead, 1) << stages << " stages";
      for (int32_t n = 1; n <= 12; ++n) {
        std::vector<int32_t> holder(static_cast<size_t>(stages), -1);  // tile in each stage
        int32_t committed = 0;
        auto issue = [&](int32_t t) {  // one group a call, empty past the last tile
          if (t < n) {
            const int32_t st = t % stages, old = holder[static_cast<size_t>(st)];
            holder[static_cast<size_t>(st)] = t;
            EXPECT_EQ(t, committed) << "tile t is group t";
            return old;
          }
          return -1;
        };
        for (int32_t t = 0; t < lead; ++t) {
          EXPECT_EQ(issue(t), -1);
          ++committed;
        }
        for (int32_t j = 0; j < n; ++j) {
          const int32_t complete = committed - pending;  // groups 0 .. complete - 1 have landed
          EXPECT_GE(complete, j + 1) << "tile " << j << " computed before it landed";
          EXPECT_EQ(holder[static_cast<size_t>(j % stages)], j) << "tile " << j << " overwritten";
          if (overlap && j > 0)
            EXPECT_EQ(holder[static_cast<size_t>((j - 1) % stages)], j - 1)
                << "tile " << j - 1 << "'s V overwritten while its P·V runs";
          const int32_t old = issue(j + lead);
          ++committed;
          // The refilled stage's tile is consumed: computed before this iteration (no overlap)
          // or two back (overlap: tile j - 1's V is read in iteration j).
          if (old >= 0) EXPECT_LE(old, j - (overlap ? 2 : 1)) << "stage of tile " << old;
          for (int32_t t = j + 1; t < std::min(n, j + lead); ++t)
            EXPECT_EQ(holder[static_cast<size_t>(t % stages)], t) << "tile " << t << " in flight";
        }
      }
    }
  }
}

TEST(FlashPrefillSchedule, KvRangeAndMaskSkipAreExact) {
  for (int32_t window : {0, 1, 16, 100, 300}) {
    for (int32_t pos0 = 0; pos0 < 400; pos0 += 3) {
      for (int32_t rows : {1, 17, 64}) {
        const PrefillTile t{0, 0, rows, pos0};
        int32_t lo = 0, hi = 0;
        kv_range(t, window, &lo, &hi);
        // Every visible (row, kv) lies in [lo, hi); the tiles cover [lo, hi).
        for (int32_t r = 0; r < rows; ++r)
          for (int32_t kv = 0; kv < pos0 + rows + 5; ++kv)
            if (visible(t, r, kv, window)) {
              ASSERT_GE(kv, lo);
              ASSERT_LT(kv, hi);
            }
        const int32_t n = kv_tiles(lo, hi);
        EXPECT_GE(lo + n * kBN, hi);
        EXPECT_LT(lo + (n - 1) * kBN, hi);
        // A tile whose mask is skipped has every (real row, kv) visible.
        for (int32_t j = 0; j < n; ++j) {
          const int32_t k0 = lo + j * kBN;
          if (needs_mask(t, k0, window)) continue;
          for (int32_t r = 0; r < rows; ++r)
            for (int32_t c = 0; c < kBN; ++c) ASSERT_TRUE(visible(t, r, k0 + c, window)) << r << " " << c;
        }
        // Each row sees exactly min(window, pos + 1) positions.
        for (int32_t r = 0; r < rows; ++r) {
          int32_t seen = 0;
          for (int32_t kv = lo; kv < hi; ++kv) seen += visible(t, r, kv, window);
          EXPECT_EQ(seen, window > 0 ? std::min(window, pos0 + r + 1) : pos0 + r + 1);
        }
      }
    }
  }
}

TEST(FlashPrefillSchedule, SwizzleIsConflictFreeForLdmatrix) {
  using Src = void (*)(int32_t, int32_t*, int32_t*);
  for (int32_t d : {64, 128}) {
    // A bijection of each row's chunks.
    for (int32_t r = 0; r < kBN; ++r) {
      std::vector<int32_t> seen(static_cast<size_t>(d), 0);
      for (int32_t c = 0; c < d; ++c) {
        const int32_t off = smem_off(r, c, d);
        ASSERT_GE(off, r * d);
        ASSERT_LT(off, (r + 1) * d);
        ++seen[off - r * d];
      }
      for (int32_t s : seen) ASSERT_EQ(s, 1);
    }
    // Each 8-lane phase of an ldmatrix reads 8 rows of 16 bytes: 8 distinct 16-byte bank groups.
    for (Src src : {Src{&a_frag_src}, Src{&b_frag_src}, Src{&v_frag_src}})
      for (int32_t row0 = 0; row0 < kBN; row0 += 16)
        for (int32_t col0 = 0; col0 < d; col0 += 16)
          for (int32_t phase = 0; phase < 4; ++phase) {
            std::array<int32_t, 8> groups{};
            for (int32_t i = 0; i < 8; ++i) {
              int32_t r = 0, c = 0;
              src(8 * phase + i, &r, &c);
              const int32_t off = smem_off(row0 + r, col0 + c, d);
              ASSERT_EQ(off % 8, 0);
              groups[i] = (off / 8) % 8;
            }
            std::sort(groups.begin(), groups.end());
            EXPECT_TRUE(std::adjacent_find(groups.begin(), groups.end()) == groups.end())
                << "d=" << d << " row0=" << row0 << " col0=" << col0 << " phase=" << phase;
          }
  }
}

// ---- Lane-level emulation of prefill_kernel ----

using namespace emulation;

struct Problem {
  int32_t hq, hk, d, page_size, window;
  std::vector<int32_t> pages_flat, indptr;  // kv_indices, kv_indptr
  std::vector<float> q;                     // [T, hq, d] (q_stride = hq * d)
  std::vector<float> kpool, vpool;          // [slots, hk, d]
  Batch batch;
};

// The kernel's computation for (tile, head), writing out [T, hq, d].
void emulate_cta(const Problem& pb, const PrefillTile& tile, int32_t h, std::vector<float>& out) {
  const int32_t D = pb.d, kChunks = D / 8;
  if (tile.pos0 < 0) {
    for (int32_t r = 0; r < tile.rows; ++r)
      for (int32_t c = 0; c < D; ++c) out[(size_t(tile.q0 + r) * pb.hq + h) * D + c] = 0.0f;
    return;
  }
  int32_t lo = 0, hi = 0;
  kv_range(tile, pb.window, &lo, &hi);
  const int32_t kvh = h / (pb.hq / pb.hk);
  const int32_t* pages = pb.pages_flat.data() + pb.indptr[tile.seq];
  const float scale_log2 = 1.0f / std::sqrt(float(D)) * 1.4426950408889634f;
  std::vector<float> sQ(size_t(kBM) * D), sK(size_t(kBN) * D), sV(size_t(kBN) * D);
  for (int32_t r = 0; r < kBM; ++r)
    for (int32_t c = 0; c < kChunks; ++c) {
      const int32_t rr = r < tile.rows ? r : tile.rows - 1;
      for (int32_t e = 0; e < 8; ++e)
        sQ[smem_off(r, c * 8, D) + e] = pb.q[(size_t(tile.q0 + rr) * pb.hq + h) * D + c * 8 + e];
    }
  for (int32_t warp = 0; warp < kPrefillWarps; ++warp) {
    const int32_t row_base = warp * 16, kSN = kBN / 8, kON = D / 8;
    std::vector<std::array<Regs, 32>> qf(D / 16);
    for (int32_t ks = 0; ks < D / 16; ++ks)
      qf[ks] = ldmatrix(sQ, frag_addr(&a_frag_src, row_base, ks * 16, D), false);
    std::vector<std::array<std::array<float, 4>, 32>> o(kON);
    for (auto& x : o) x = {};
    std::array<std::array<float, 2>, 32> m{}, l{};
    for (auto& x : m) x = {-INFINITY, -INFINITY};
    for (int32_t j = 0; j < kv_tiles(lo, hi); ++j) {
      const int32_t k0 = lo + j * kBN;
      for (int32_t r = 0; r < kBN; ++r) {  // the gather (cp.async, zero-fill past hi)
        const int32_t pos = k0 + r;
        const int64_t off = pos < hi ? kv_row_offset(pages, pb.page_size, pos, pb.hk, kvh, D) : -1;
        for (int32_t c = 0; c < D; ++c) {
          sK[smem_off(r, c, D)] = off < 0 ? 0.0f : pb.kpool[off + c];
          sV[smem_off(r, c, D)] = off < 0 ? 0.0f : pb.vpool[off + c];
        }
      }
      std::vector<std::array<std::array<float, 4>, 32>> s(kSN);
      for (auto& x : s) x = {};
      for (int32_t ks = 0; ks < D / 16; ++ks)
        for (int32_t n2 = 0; n2 < kSN / 2; ++n2) {
          const auto kf = ldmatrix(sK, frag_addr(&b_frag_src, n2 * 16, ks * 16, D), false);
          mma(s[2 * n2], qf[ks], b_half(kf, 0));
          mma(s[2 * n2 + 1], qf[ks], b_half(kf, 1));
        }
      const bool mask = needs_mask(tile, k0, pb.window);
      for (int32_t n = 0; n < kSN; ++n)
        for (int32_t ln = 0; ln < 32; ++ln)
          for (int32_t i = 0; i < 4; ++i) {
            int32_t r = 0, c = 0;
            acc_pos(ln, i, &r, &c);
            s[n][ln][i] *= scale_log2;
            if (mask && !visible(tile, row_base + r, k0 + n * 8 + c, pb.window)) s[n][ln][i] = -INFINITY;
          }
      for (int32_t hf = 0; hf < 2; ++hf) {
        std::array<float, 32> mx{};
        for (int32_t ln = 0; ln < 32; ++ln) {
          mx[ln] = -INFINITY;
          for (int32_t n = 0; n < kSN; ++n)
            mx[ln] = std::max({mx[ln], s[n][ln][2 * hf], s[n][ln][2 * hf + 1]});
        }
        for (int32_t ln = 0; ln < 32; ++ln) {
          float q4 = -INFINITY;  // quad reduction (shfl_xor 1, 2)
          for (int32_t k = 0; k < 4; ++k) q4 = std::max(q4, mx[(ln & ~3) + k]);
          const float m_new = std::max(m[ln][hf], q4);
          const float m_use = m_new == -INFINITY ? 0.0f : m_new;
          const float corr = std::exp2(m[ln][hf] - m_use);
          float sum = 0.0f;
          for (int32_t n = 0; n < kSN; ++n)
            for (int32_t e = 0; e < 2; ++e) {
              float& v = s[n][ln][2 * hf + e];
              v = std::exp2(v - m_use);
              sum += v;
            }
          l[ln][hf] = l[ln][hf] * corr + sum;
          m[ln][hf] = m_new;
          for (int32_t n = 0; n < kON; ++n) {
            o[n][ln][2 * hf] *= corr;
            o[n][ln][2 * hf + 1] *= corr;
          }
        }
      }
      for (int32_t kk = 0; kk < kBN / 16; ++kk) {
        std::array<Regs, 32> a{};
        for (int32_t ln = 0; ln < 32; ++ln)
          for (int32_t r = 0; r < 4; ++r) {
            int32_t nb = 0, e = 0;
            p_frag_from_acc(kk, r, &nb, &e);
            a[ln][r] = {bf16_round(s[nb][ln][e]), bf16_round(s[nb][ln][e + 1])};
          }
        for (int32_t n2 = 0; n2 < kON / 2; ++n2) {
          const auto vf = ldmatrix(sV, frag_addr(&v_frag_src, kk * 16, n2 * 16, D), true);
          mma(o[2 * n2], a, b_half(vf, 0));
          mma(o[2 * n2 + 1], a, b_half(vf, 1));
        }
      }
    }
    for (int32_t ln = 0; ln < 32; ++ln)
      for (int32_t hf = 0; hf < 2; ++hf) {
        float sum = 0.0f;
        for (int32_t k = 0; k < 4; ++k) sum += l[(ln & ~3) + k][hf];
        int32_t r = 0, c = 0;
        acc_pos(ln, 2 * hf, &r, &c);
        const int32_t row = row_base + r;
        if (row >= tile.rows) continue;
        for (int32_t n = 0; n < kON; ++n)
          for (int32_t e = 0; e < 2; ++e)
            out[(size_t(tile.q0 + row) * pb.hq + h) * D + n * 8 + c + e] =
                sum > 0.0f ? o[n][ln][2 * hf + e] / sum : 0.0f;
      }
  }
}

void run_emulation(int32_t hq, int32_t hk, int32_t d, int32_t page_size, int32_t window,
                   const std::vector<std::pair<int32_t, int32_t>>& seqs) {
  SCOPED_TRACE(testing::Message() << "hq=" << hq << " hk=" << hk << " d=" << d << " page=" << page_size
                                  << " window=" << window);
  std::mt19937 rng(77 + d + page_size);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Problem pb{hq, hk, d, page_size, window, {}, {0}, {}, {}, {}, make_batch(seqs)};
  int32_t total_pages = 0;
  for (auto [n, len] : seqs) total_pages += (len + page_size - 1) / page_size;
  std::vector<int32_t> perm(static_cast<size_t>(total_pages) + 3);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  int32_t next = 0;
  for (auto [n, len] : seqs) {
    for (int32_t p = 0; p < (len + page_size - 1) / page_size; ++p) pb.pages_flat.push_back(perm[next++]);
    pb.indptr.push_back(static_cast<int32_t>(pb.pages_flat.size()));
  }
  const size_t slots = perm.size() * size_t(page_size);
  pb.kpool.resize(slots * hk * d);
  pb.vpool.resize(slots * hk * d);
  for (auto& x : pb.kpool) x = bf16_round(nd(rng));
  for (auto& x : pb.vpool) x = bf16_round(nd(rng));
  const int32_t T = pb.batch.qo.back();
  pb.q.resize(size_t(T) * hq * d);
  for (auto& x : pb.q) x = bf16_round(nd(rng));

  std::vector<float> got(pb.q.size(), std::nanf("")), want(pb.q.size(), 0.0f);
  const auto ns = static_cast<int32_t>(seqs.size());
  const auto tiles = build_prefill_tiles(pb.batch.qo.data(), pb.batch.kv_lens.data(), ns, window);
  for (const PrefillTile& t : tiles)
    for (int32_t h = 0; h < hq; ++h) emulate_cta(pb, t, h, got);

  for (int32_t s = 0; s < ns; ++s) {
    const int32_t n = pb.batch.qo[s + 1] - pb.batch.qo[s], len = pb.batch.kv_lens[s];
    if (len == 0) continue;
    for (int32_t j = 0; j < n; ++j) {
      const int32_t t = pb.batch.qo[s] + j, pos = len - n + j;
      naive_attention(pb.q.data() + size_t(t) * hq * d, hq, hk, d, pb.pages_flat.data() + pb.indptr[s],
                      page_size, row_begin(pos, window), pos, pb.kpool, pb.vpool,
                      want.data() + size_t(t) * hq * d);
    }
  }
  expect_close(got, want);
}

TEST(FlashPrefillSchedule, EmulatedKernelMatchesNaiveAttention) {
  // Cached prefix + new tokens, GQA 2, head dim 128, page size 16, two partial query tiles.
  run_emulation(4, 2, 128, 16, 0, {{100, 170}});
  // Several sequences (lengths not multiples of the tile), a decode token, padding, page size 1.
  run_emulation(2, 1, 64, 1, 0, {{70, 70}, {1, 40}, {3, 0}, {20, 85}, {9, 70}});
  // Sliding window shorter than a tile and longer than one; odd page size.
  run_emulation(2, 2, 64, 5, 24, {{90, 150}});
  run_emulation(2, 1, 128, 16, 100, {{130, 200}, {9, 9}});
}

}  // namespace
}  // namespace sable::attention::flash
