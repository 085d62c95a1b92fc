// The GQA-packed decode kernel of the "flash" plugin (plugins/attention/flash/decode_attention.cu),
// checked on the CPU: its split plan covers every visible position exactly once, and a lane-level
// emulation of the kernel (group heads packed into the MMA rows, cp.async gather of 64-position
// tiles from the pages, one 16-position slice per warp, ldmatrix / mma.sync m16n8k16 with the PTX
// fragment layouts, online softmax in the log2 domain, the warps combined, split partials merged
// by the last CTA) matches a naive fp64 attention. The token's own K/V row is poisoned in the pool
// while the CTAs run: the kernel must take it from its inputs, then store it (split 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "plugins/attention/flash/decode_schedule.h"
#include "tests/unit/flash_emulation.h"

namespace sable::attention::flash {
namespace {

using namespace emulation;

TEST(FlashDecodeSchedule, SplitsCoverEveryVisiblePositionOnce) {
  std::mt19937 rng(3);
  for (int it = 0; it < 300; ++it) {
    const int32_t tokens = 1 + static_cast<int32_t>(rng() % 300);
    const int32_t kv_heads = 1 << (rng() % 4);
    const int32_t d = rng() % 2 ? 64 : 128;
    const int32_t splits = decode_splits(tokens, kv_heads, d, 132);
    ASSERT_GE(splits, 1);
    ASSERT_LE(splits, kMaxSplits);
    // The last-wave fit only ever adds splits to the two-wave choice, at most doubling it.
    const int32_t two_waves = decode_splits(tokens, kv_heads, d, 132, /*wave_fit=*/false);
    EXPECT_GE(splits, two_waves);
    EXPECT_LE(splits, std::min(2 * two_waves + 1, kMaxSplits));
    const int32_t max_len = 1 + static_cast<int32_t>(rng() % 9000);
    // The plan's floor (decode_floor: one tile, or up to three while a wave stays full) or one
    // tile.
    const int32_t floor =
        rng() % 2 ? decode_floor(tokens, kv_heads, d, 132, splits, max_len) : kDecodeN;
    ASSERT_GE(floor, kDecodeN);
    ASSERT_LE(floor, kFloorTiles * kDecodeN);
    const int32_t chunk = decode_chunk(max_len, splits, floor);
    EXPECT_GE(chunk, floor);
    for (int32_t k = 0; k < 5; ++k) {  // tokens of the batch: any end up to max_len, any window
      const int32_t end = 1 + static_cast<int32_t>(rng() % max_len);
      const int32_t window = rng() % 3 == 0 ? 1 + static_cast<int32_t>(rng() % 600) : 0;
      const int32_t begin = row_begin(end - 1, window);
      std::vector<int32_t> seen(static_cast<size_t>(end), 0);
      // The splits that run (decode_used_splits) are exactly those with positions.
      const int32_t used = decode_used_splits(begin, end, chunk);
      ASSERT_LE(used, splits);
      for (int32_t s = 0; s < splits; ++s) {
        int32_t lo = 0, hi = 0;
        split_range(begin, end, chunk, s, &lo, &hi);
        ASSERT_LE(lo, hi);
        EXPECT_EQ(hi > lo, s < used) << "split " << s << " of " << used;
        for (int32_t p = lo; p < hi; ++p) {
          ASSERT_GE(p, begin);
          ASSERT_LT(p, end);
          ++seen[p];
        }
      }
      for (int32_t p = 0; p < end; ++p) ASSERT_EQ(seen[p], p >= begin ? 1 : 0) << p;
    }
  }
  // Batch 1 on a 132-SM card splits as far as allowed; a large batch does not split.
  EXPECT_EQ(decode_splits(1, 2, 64, 132), kMaxSplits);
  EXPECT_EQ(decode_splits(256, 8, 128, 132), 1);
  // 64 tokens x 8 KV heads on 132 SMs x 3 CTAs: 2 splits leave the third wave 59 % busy, 3 fill
  // 3.9 waves; 163 tokens: 1 split is 2.5 waves, 3 splits 9.9.
  EXPECT_EQ(decode_splits(64, 8, 128, 132, false), 2);
  EXPECT_EQ(decode_splits(64, 8, 128, 132), 3);
  EXPECT_EQ(decode_splits(163, 8, 128, 132), 3);
  EXPECT_TRUE(decode_supported(128, 16));
  EXPECT_FALSE(decode_supported(128, 17));
  EXPECT_FALSE(decode_supported(96, 4));
}

TEST(FlashDecodeSchedule, TokenListHoldsTheOneTokenSequences) {
  const std::vector<int32_t> qo{0, 1, 5, 6, 7, 40};
  EXPECT_EQ(decode_token_list(qo.data(), 5), (std::vector<int32_t>{0, 5, 6}));
}

// ---- Lane-level emulation of decode_kernel ----

struct Problem {
  int32_t hq, hk, d, page_size, window;
  std::vector<int32_t> pages_flat, indptr, kv_lens;  // per sequence; one new token each
  std::vector<float> q, k_new, v_new;                // [B, hq, d], [B, hk, d]
  std::vector<float> kpool, vpool;                   // [slots, hk, d]
};

using Acc = std::array<std::array<float, 4>, 32>;

// One CTA (token t, KV head kvh, positions [lo, hi)): the group's (m, l, acc[d]) per q head, as
// the kernel leaves them after combining its warps (m = -inf, l = 0 for an empty range).
struct Partial {
  std::vector<float> m, l, acc;  // [group], [group], [group * d]
};

Partial emulate_cta(const Problem& pb, int32_t t, int32_t kvh, int32_t lo, int32_t hi) {
  const int32_t D = pb.d, G = pb.hq / pb.hk, kON = D / 8, new_pos = pb.kv_lens[t] - 1;
  const int32_t* pages = pb.pages_flat.data() + pb.indptr[t];
  const float scale_log2 = 1.0f / std::sqrt(float(D)) * 1.4426950408889634f;
  std::vector<float> sQ(size_t(kDecodeRows) * D), sK(size_t(kDecodeN) * D), sV(size_t(kDecodeN) * D);
  for (int32_t r = 0; r < kDecodeRows; ++r)
    for (int32_t c = 0; c < D; ++c)
      sQ[smem_off(r, c, D)] = r < G ? pb.q[(size_t(t) * pb.hq + kvh * G + r) * D + c] : 0.0f;
  std::vector<std::array<Regs, 32>> qf(D / 16);
  for (int32_t ks = 0; ks < D / 16; ++ks) qf[ks] = ldmatrix(sQ, frag_addr(&a_frag_src, 0, ks * 16, D), false);
  // Per warp: O fragments, and (m, l) per lane and row half.
  std::vector<std::vector<Acc>> o(kDecodeWarps, std::vector<Acc>(kON, Acc{}));
  std::vector<std::array<std::array<float, 2>, 32>> m(kDecodeWarps), l(kDecodeWarps);
  for (int32_t w = 0; w < kDecodeWarps; ++w)
    for (int32_t ln = 0; ln < 32; ++ln) {
      m[w][ln] = {-INFINITY, -INFINITY};
      l[w][ln] = {0.0f, 0.0f};
    }
  const int32_t n_tiles = hi > lo ? (hi - lo + kDecodeN - 1) / kDecodeN : 0;
  for (int32_t j = 0; j < n_tiles; ++j) {
    const int32_t k0 = lo + j * kDecodeN;
    for (int32_t r = 0; r < kDecodeN; ++r) {  // the gather: zero-fill past hi, own row from inputs
      const int32_t pos = k0 + r;
      for (int32_t c = 0; c < D; ++c) {
        float kv = 0.0f, vv = 0.0f;
        if (pos < hi && pos == new_pos) {
          kv = pb.k_new[(size_t(t) * pb.hk + kvh) * D + c];
          vv = pb.v_new[(size_t(t) * pb.hk + kvh) * D + c];
        } else if (pos < hi) {
          const int64_t off = kv_row_offset(pages, pb.page_size, pos, pb.hk, kvh, D);
          kv = pb.kpool[off + c];
          vv = pb.vpool[off + c];
        }
        sK[smem_off(r, c, D)] = kv;
        sV[smem_off(r, c, D)] = vv;
      }
    }
    for (int32_t w = 0; w < kDecodeWarps; ++w) {
      const int32_t wrow = 16 * w;
      if (k0 + wrow >= hi) continue;
      std::array<Acc, 2> s{};
      for (int32_t ks = 0; ks < D / 16; ++ks) {
        const auto kf = ldmatrix(sK, frag_addr(&b_frag_src, wrow, ks * 16, D), false);
        mma(s[0], qf[ks], b_half(kf, 0));
        mma(s[1], qf[ks], b_half(kf, 1));
      }
      for (int32_t n = 0; n < 2; ++n)
        for (int32_t ln = 0; ln < 32; ++ln)
          for (int32_t i = 0; i < 4; ++i) {
            int32_t r = 0, c = 0;
            acc_pos(ln, i, &r, &c);
            s[n][ln][i] = k0 + wrow + n * 8 + c < hi ? s[n][ln][i] * scale_log2 : -INFINITY;
          }
      for (int32_t hf = 0; hf < 2; ++hf) {
        std::array<float, 32> mx{};
        for (int32_t ln = 0; ln < 32; ++ln)
          mx[ln] = std::max({s[0][ln][2 * hf], s[0][ln][2 * hf + 1], s[1][ln][2 * hf], s[1][ln][2 * hf + 1]});
        for (int32_t ln = 0; ln < 32; ++ln) {
          float q4 = -INFINITY;
          for (int32_t k = 0; k < 4; ++k) q4 = std::max(q4, mx[(ln & ~3) + k]);
          const float m_new = std::max(m[w][ln][hf], q4);
          EXPECT_TRUE(std::isfinite(m_new));
          const float corr = std::exp2(m[w][ln][hf] - m_new);
          float sum = 0.0f;
          for (int32_t n = 0; n < 2; ++n)
            for (int32_t e = 0; e < 2; ++e) {
              float& v = s[n][ln][2 * hf + e];
              v = std::exp2(v - m_new);
              sum += v;
            }
          l[w][ln][hf] = l[w][ln][hf] * corr + sum;
          m[w][ln][hf] = m_new;
          for (int32_t n = 0; n < kON; ++n) {
            o[w][n][ln][2 * hf] *= corr;
            o[w][n][ln][2 * hf + 1] *= corr;
          }
        }
      }
      std::array<Regs, 32> a{};
      for (int32_t ln = 0; ln < 32; ++ln)
        for (int32_t r = 0; r < 4; ++r) {
          int32_t nb = 0, e = 0;
          p_frag_from_acc(0, r, &nb, &e);
          a[ln][r] = {bf16_round(s[nb][ln][e]), bf16_round(s[nb][ln][e + 1])};
        }
      for (int32_t n2 = 0; n2 < kON / 2; ++n2) {
        const auto vf = ldmatrix(sV, frag_addr(&v_frag_src, wrow, n2 * 16, D), true);
        mma(o[w][2 * n2], a, b_half(vf, 0));
        mma(o[w][2 * n2 + 1], a, b_half(vf, 1));
      }
    }
  }
  // The warps' states through "shared memory": [warp][row][d], and m, l per (warp, row).
  std::vector<float> s_o(size_t(kDecodeWarps) * kDecodeRows * D), s_m(kDecodeWarps * kDecodeRows),
      s_l(kDecodeWarps * kDecodeRows);
  for (int32_t w = 0; w < kDecodeWarps; ++w)
    for (int32_t ln = 0; ln < 32; ++ln)
      for (int32_t hf = 0; hf < 2; ++hf) {
        float sum = 0.0f;
        for (int32_t k = 0; k < 4; ++k) sum += l[w][(ln & ~3) + k][hf];
        int32_t r = 0, c = 0;
        acc_pos(ln, 2 * hf, &r, &c);
        for (int32_t n = 0; n < kON; ++n) {
          s_o[(size_t(w) * kDecodeRows + r) * D + n * 8 + c] = o[w][n][ln][2 * hf];
          s_o[(size_t(w) * kDecodeRows + r) * D + n * 8 + c + 1] = o[w][n][ln][2 * hf + 1];
        }
        if ((ln & 3) == 0) {
          s_m[w * kDecodeRows + r] = m[w][ln][hf];
          s_l[w * kDecodeRows + r] = sum;
        }
      }
  Partial p{std::vector<float>(G), std::vector<float>(G), std::vector<float>(size_t(G) * D)};
  for (int32_t r = 0; r < G; ++r) {
    float mx = -INFINITY;
    for (int32_t w = 0; w < kDecodeWarps; ++w) mx = std::max(mx, s_m[w * kDecodeRows + r]);
    float sum = 0.0f;
    for (int32_t w = 0; w < kDecodeWarps; ++w)
      if (s_m[w * kDecodeRows + r] != -INFINITY)
        sum += s_l[w * kDecodeRows + r] * std::exp2(s_m[w * kDecodeRows + r] - mx);
    for (int32_t dd = 0; dd < D; ++dd) {
      float acc = 0.0f;
      for (int32_t w = 0; w < kDecodeWarps; ++w)
        if (s_m[w * kDecodeRows + r] != -INFINITY)
          acc += s_o[(size_t(w) * kDecodeRows + r) * D + dd] * std::exp2(s_m[w * kDecodeRows + r] - mx);
      p.acc[size_t(r) * D + dd] = acc;
    }
    p.m[r] = sum > 0.0f ? mx : -INFINITY;
    p.l[r] = sum;
  }
  return p;
}

// min_chunk: decode_chunk's floor (the plan's decode_floor: one tile, or up to three).
void run_emulation(int32_t hq, int32_t hk, int32_t d, int32_t page_size, int32_t window,
                   const std::vector<int32_t>& kv_lens, int32_t num_sms,
                   int32_t min_chunk = kDecodeN) {
  SCOPED_TRACE(testing::Message() << "hq=" << hq << " hk=" << hk << " d=" << d
                                  << " page=" << page_size << " window=" << window
                                  << " sms=" << num_sms << " min_chunk=" << min_chunk);
  std::mt19937 rng(91 + d + page_size + hq);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Problem pb{hq, hk, d, page_size, window, {}, {0}, kv_lens, {}, {}, {}, {}, {}};
  const auto B = static_cast<int32_t>(kv_lens.size());
  int32_t total_pages = 0, max_len = 0;
  for (int32_t len : kv_lens) {
    total_pages += (len + page_size - 1) / page_size;
    max_len = std::max(max_len, len);
  }
  std::vector<int32_t> perm(static_cast<size_t>(total_pages) + 3);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  int32_t next = 0;
  for (int32_t len : kv_lens) {
    for (int32_t p = 0; p < (len + page_size - 1) / page_size; ++p) pb.pages_flat.push_back(perm[next++]);
    pb.indptr.push_back(static_cast<int32_t>(pb.pages_flat.size()));
  }
  const size_t slots = perm.size() * size_t(page_size);
  pb.kpool.resize(slots * hk * d);
  pb.vpool.resize(slots * hk * d);
  for (auto& x : pb.kpool) x = bf16_round(nd(rng));
  for (auto& x : pb.vpool) x = bf16_round(nd(rng));
  for (auto* buf : {&pb.q, &pb.k_new, &pb.v_new}) {
    buf->resize(size_t(B) * (buf == &pb.q ? hq : hk) * d);
    for (auto& x : *buf) x = bf16_round(nd(rng));
  }
  // The reference reads the new rows where they belong; the kernel must not: poison them.
  std::vector<float> ref_k = pb.kpool, ref_v = pb.vpool;
  for (int32_t t = 0; t < B; ++t) {
    if (kv_lens[t] == 0) continue;
    const int32_t* pages = pb.pages_flat.data() + pb.indptr[t];
    for (int32_t h = 0; h < hk; ++h) {
      const int64_t off = kv_row_offset(pages, page_size, kv_lens[t] - 1, hk, h, d);
      for (int32_t c = 0; c < d; ++c) {
        ref_k[off + c] = pb.k_new[(size_t(t) * hk + h) * d + c];
        ref_v[off + c] = pb.v_new[(size_t(t) * hk + h) * d + c];
        pb.kpool[off + c] = pb.vpool[off + c] = std::nanf("");
      }
    }
  }

  // The plan (flash_plugin.cpp): splits from the batch shape, chunk from the longest sequence.
  const int32_t splits = decode_splits(B, hk, d, num_sms);
  const int32_t chunk = decode_chunk(max_len, splits, min_chunk);
  const int32_t G = hq / hk;
  std::vector<float> got(pb.q.size(), std::nanf(""));
  for (int32_t t = 0; t < B; ++t) {
    const int32_t end = kv_lens[t], begin = end > 0 ? row_begin(end - 1, window) : 0;
    for (int32_t kvh = 0; kvh < hk; ++kvh) {
      std::vector<Partial> parts;
      const int32_t used = decode_used_splits(begin, end, chunk);
      ASSERT_LE(used, splits);
      for (int32_t s = 0; s < used; ++s) {
        int32_t lo = 0, hi = 0;
        split_range(begin, end, chunk, s, &lo, &hi);
        parts.push_back(emulate_cta(pb, t, kvh, lo, hi));
      }
      // The merge (by the last CTA when splits > 1; the one CTA's own normalisation otherwise).
      for (int32_t r = 0; r < G; ++r) {
        float mx = -INFINITY;
        for (const Partial& p : parts)
          if (p.l[r] > 0.0f) mx = std::max(mx, p.m[r]);
        for (int32_t c = 0; c < d; ++c) {
          float sum = 0.0f, acc = 0.0f;
          for (const Partial& p : parts) {
            if (p.l[r] <= 0.0f) continue;
            const float f = std::exp2(p.m[r] - mx);
            sum += p.l[r] * f;
            acc += p.acc[size_t(r) * d + c] * f;
          }
          got[(size_t(t) * hq + kvh * G + r) * d + c] = sum > 0.0f ? acc / sum : 0.0f;
        }
      }
    }
  }
  // Split 0 stores the new rows after the others have run (nothing read them from the pool).
  for (int32_t t = 0; t < B; ++t) {
    if (kv_lens[t] == 0) continue;
    const int32_t* pages = pb.pages_flat.data() + pb.indptr[t];
    for (int32_t h = 0; h < hk; ++h) {
      const int64_t off = kv_row_offset(pages, page_size, kv_lens[t] - 1, hk, h, d);
      for (int32_t c = 0; c < d; ++c) {
        pb.kpool[off + c] = pb.k_new[(size_t(t) * hk + h) * d + c];
        pb.vpool[off + c] = pb.v_new[(size_t(t) * hk + h) * d + c];
      }
    }
  }
  EXPECT_EQ(pb.kpool, ref_k);
  EXPECT_EQ(pb.vpool, ref_v);

  std::vector<float> want(got.size(), 0.0f);
  for (int32_t t = 0; t < B; ++t) {
    const int32_t len = kv_lens[t];
    if (len == 0) continue;  // padding: zeros
    naive_attention(pb.q.data() + size_t(t) * hq * d, hq, hk, d, pb.pages_flat.data() + pb.indptr[t],
                    page_size, row_begin(len - 1, window), len - 1, ref_k, ref_v,
                    want.data() + size_t(t) * hq * d);
  }
  expect_close(got, want);
}

TEST(FlashDecodeSchedule, EmulatedKernelMatchesNaiveAttention) {
  // Qwen2.5-0.5B heads (group 7, D 64), batch 1: the maximum split count, partial last tile.
  run_emulation(14, 2, 64, 16, 0, {383}, 132);
  // Llama-8B heads (group 4, D 128), a few sequences of uneven lengths, a 1-token one, padding.
  run_emulation(32, 8, 128, 16, 0, {700, 1, 65, 0, 129}, 132);
  // Group 16 (one KV head), page size 1, a long sequence split in several ranges.
  run_emulation(16, 1, 128, 1, 0, {1500, 64}, 8);
  // Sliding window (begin > 0, ranges start mid-page), odd page size, group 2.
  run_emulation(4, 2, 64, 5, 100, {333, 90, 17}, 4);
  // A small "GPU": two splits, the second one short.
  run_emulation(8, 2, 128, 16, 0, {257, 3}, 1);
  // Three-tile floors (decode_floor): splits of several tiles with a partial last one, the later
  // splits of the grid empty; a window inside one split.
  run_emulation(32, 8, 128, 16, 0, {190, 1, 65, 0, 129}, 132, 3 * kDecodeN);
  run_emulation(4, 2, 64, 5, 100, {333, 90, 17}, 4, 2 * kDecodeN);
}

}  // namespace
}  // namespace sable::attention::flash
