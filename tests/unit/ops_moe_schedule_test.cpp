// The index math of the CUDA fused-MoE op (core/ops/cuda/moe_schedule.h), checked on the CPU:
// grouping by expert, the grouped-GEMM tile schedule (every sorted row covered exactly once, the
// grid bound never exceeded), a full host emulation of the op through that schedule against the
// CPU ops table, and the ldmatrix/mma.sync fragment mapping against the PTX ISA's fragment layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cuda/moe_schedule.h"
#include "sable/cpp/tensor.h"

namespace sable::ops::cuda::moe {
namespace {

std::vector<int32_t> random_ids(int32_t tokens, int32_t k, int32_t experts, std::mt19937& rng) {
  // Distinct experts per token, as top-k routing produces.
  std::vector<int32_t> ids;
  std::vector<int32_t> all(static_cast<size_t>(experts));
  for (int32_t t = 0; t < tokens; ++t) {
    for (int32_t e = 0; e < experts; ++e) all[e] = e;
    std::shuffle(all.begin(), all.end(), rng);
    ids.insert(ids.end(), all.begin(), all.begin() + k);
  }
  return ids;
}

// Checks a grouping and its tile schedule: returns the number of non-empty tiles.
int64_t check_schedule(const std::vector<int32_t>& ids, int32_t experts, int32_t bm) {
  const auto pairs = static_cast<int32_t>(ids.size());
  const Grouping g = group_pairs(ids.data(), pairs, experts, bm);
  int32_t valid = 0;
  for (int32_t id : ids) valid += (id >= 0 && id < experts);
  EXPECT_EQ(g.offsets[experts], valid);
  // perm/inv are inverse, sorted by expert, stable within one expert.
  for (int32_t i = 0; i < pairs; ++i) {
    if (ids[i] < 0 || ids[i] >= experts) {
      EXPECT_EQ(g.inv[i], -1);
      continue;
    }
    const int32_t pos = g.inv[i];
    EXPECT_EQ(g.perm[pos], i);
    EXPECT_GE(pos, g.offsets[ids[i]]);
    EXPECT_LT(pos, g.offsets[ids[i] + 1]);
  }
  // Every sorted row is in exactly one tile, of its expert; CTAs past the last tile do nothing.
  const int64_t grid = max_m_tiles(pairs, experts, bm);
  EXPECT_LE(g.tile_offsets[experts], grid);
  std::vector<int32_t> covered(static_cast<size_t>(valid), 0);
  int64_t tiles = 0;
  for (int64_t b = 0; b < grid; ++b) {
    Tile t{};
    if (!locate_tile(g.tile_offsets.data(), g.offsets.data(), experts, bm, b, &t)) {
      EXPECT_GE(b, g.tile_offsets[experts]);
      continue;
    }
    ++tiles;
    EXPECT_GE(t.rows, 1);
    EXPECT_LE(t.rows, bm);
    EXPECT_GE(t.row0, g.offsets[t.expert]);
    EXPECT_LE(t.row0 + t.rows, g.offsets[t.expert + 1]);
    for (int32_t r = 0; r < t.rows; ++r) {
      ++covered[t.row0 + r];
      EXPECT_EQ(ids[g.perm[t.row0 + r]], t.expert);
    }
  }
  for (int32_t c : covered) EXPECT_EQ(c, 1);
  EXPECT_EQ(tiles, g.tile_offsets[experts]);
  return tiles;
}

TEST(MoeSchedule, GroupingAndTilesCoverEveryPairOnce) {
  std::mt19937 rng(3);
  for (int32_t tokens : {1, 5, 300}) {
    for (int32_t experts : {8, 60}) {
      for (int32_t k : {2, 4}) {
        SCOPED_TRACE(testing::Message() << "T=" << tokens << " E=" << experts << " k=" << k);
        check_schedule(random_ids(tokens, k, experts, rng), experts, kTileM);
      }
    }
  }
}

TEST(MoeSchedule, GridBoundHoldsForAdversarialCounts) {
  // bm + 1 rows for every expert: each expert needs two tiles, the second with one row.
  const int32_t experts = 16, bm = kTileM;
  std::vector<int32_t> ids;
  for (int32_t e = 0; e < experts; ++e) ids.insert(ids.end(), bm + 1, e);
  EXPECT_EQ(check_schedule(ids, experts, bm), 2 * experts);
  // One pair per expert (decode with k = E): one tile each, E tiles.
  std::vector<int32_t> one(static_cast<size_t>(experts));
  for (int32_t e = 0; e < experts; ++e) one[e] = e;
  EXPECT_EQ(check_schedule(one, experts, bm), experts);
  // Everything on the last expert, the rest empty (binary search skips the empty ones).
  EXPECT_EQ(check_schedule(std::vector<int32_t>(200, experts - 1), experts, bm),
            tiles_for(200, bm));
  // Ids outside [0, E) are dropped, not scheduled.
  EXPECT_EQ(check_schedule({-1, 3, 99, 3}, 8, bm), 1);
  // The exhaustive bound check on small sizes: every count vector of 3 experts up to 2*bm+1 pairs.
  for (int32_t a = 0; a <= 9; ++a)
    for (int32_t b = 0; b <= 9; ++b)
      for (int32_t c = 0; c <= 9; ++c) {
        std::vector<int32_t> v;
        v.insert(v.end(), a, 0);
        v.insert(v.end(), b, 1);
        v.insert(v.end(), c, 2);
        const Grouping g = group_pairs(v.data(), static_cast<int32_t>(v.size()), 3, 4);
        EXPECT_LE(g.tile_offsets[3], max_m_tiles(static_cast<int64_t>(v.size()), 3, 4));
      }
}

float silu(float v) { return v / (1.0f + std::exp(-v)); }

// The op as the CUDA kernels compute it, tile by tile, through the schedule (fp32 on the host).
std::vector<float> emulate_moe(const std::vector<float>& x, const std::vector<float>& wgu,
                               const std::vector<float>& wd, const std::vector<float>& w,
                               const std::vector<int32_t>& ids, int32_t tokens, int32_t k,
                               int32_t experts, int32_t hidden, int32_t inter) {
  const int32_t pairs = tokens * k;
  const Grouping g = group_pairs(ids.data(), pairs, experts, kTileM);
  // Grouped GEMM: C[pos, n] = A[src(pos), :] · B[e][n, :] for the tiles the grid would run.
  auto grouped = [&](const float* a, int32_t lda, const int32_t* gather, int32_t div,
                     const float* b, int32_t n, int32_t kd, std::vector<float>& c) {
    c.assign(static_cast<size_t>(pairs) * n, std::nanf(""));
    const int64_t grid_m = max_m_tiles(pairs, experts, kTileM);
    const int32_t grid_n = (n + kTileN - 1) / kTileN;
    for (int64_t bx = 0; bx < grid_m; ++bx)
      for (int32_t by = 0; by < grid_n; ++by) {
        Tile t{};
        if (!locate_tile(g.tile_offsets.data(), g.offsets.data(), experts, kTileM, bx, &t)) continue;
        const float* be = b + static_cast<int64_t>(t.expert) * n * kd;
        for (int32_t r = 0; r < t.rows; ++r) {
          const int32_t pos = t.row0 + r;
          const float* ar = a + static_cast<int64_t>(gather ? token_of(gather, pos, div) : pos) * lda;
          for (int32_t col = by * kTileN; col < std::min(n, (by + 1) * kTileN); ++col) {
            float s = 0.0f;
            for (int32_t q = 0; q < kd; ++q) s += ar[q] * be[static_cast<int64_t>(col) * kd + q];
            c[static_cast<size_t>(pos) * n + col] = s;
          }
        }
      }
  };
  std::vector<float> gu, act(static_cast<size_t>(pairs) * inter), y;
  grouped(x.data(), hidden, g.perm.data(), k, wgu.data(), 2 * inter, hidden, gu);
  for (int32_t p = 0; p < pairs; ++p)
    for (int32_t i = 0; i < inter; ++i)
      act[static_cast<size_t>(p) * inter + i] =
          silu(gu[static_cast<size_t>(p) * 2 * inter + i]) * gu[static_cast<size_t>(p) * 2 * inter + inter + i];
  grouped(act.data(), inter, nullptr, 1, wd.data(), hidden, inter, y);
  std::vector<float> out(static_cast<size_t>(tokens) * hidden, 0.0f);
  for (int32_t t = 0; t < tokens; ++t)
    for (int32_t j = 0; j < k; ++j) {
      const int32_t pos = g.inv[t * k + j];
      if (pos < 0) continue;
      for (int32_t h = 0; h < hidden; ++h)
        out[static_cast<size_t>(t) * hidden + h] += w[t * k + j] * y[static_cast<size_t>(pos) * hidden + h];
    }
  return out;
}

TEST(MoeSchedule, EmulatedOpMatchesCpuOps) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto rnd = [&](size_t n, float s) {
    std::vector<float> v(n);
    for (float& f : v) f = nd(rng) * s;
    return v;
  };
  const int32_t hidden = 40, inter = 72;  // several n-tiles for gate_up (144 columns)
  for (int32_t tokens : {1, 5, 300}) {
    for (int32_t experts : {8, 60}) {
      for (int32_t k : {2, 4}) {
        SCOPED_TRACE(testing::Message() << "T=" << tokens << " E=" << experts << " k=" << k);
        auto x = rnd(static_cast<size_t>(tokens) * hidden, 1.0f);
        auto wgu = rnd(static_cast<size_t>(experts) * 2 * inter * hidden, 0.2f);
        auto wd = rnd(static_cast<size_t>(experts) * hidden * inter, 0.2f);
        auto w = rnd(static_cast<size_t>(tokens) * k, 0.5f);
        auto ids = random_ids(tokens, k, experts, rng);
        std::vector<float> ref(static_cast<size_t>(tokens) * hidden);
        Arena arena;
        SableOpsContext ctx;
        ctx.arena = &arena;
        auto xt = cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {tokens, hidden});
        auto gt = cpp::make_tensor(wgu.data(), SABLE_DTYPE_F32, {experts, 2 * inter, hidden});
        auto dt = cpp::make_tensor(wd.data(), SABLE_DTYPE_F32, {experts, hidden, inter});
        auto wt = cpp::make_tensor(w.data(), SABLE_DTYPE_F32, {tokens, k});
        auto it = cpp::make_tensor(ids.data(), SABLE_DTYPE_I32, {tokens, k});
        auto ot = cpp::make_tensor(ref.data(), SABLE_DTYPE_F32, {tokens, hidden});
        ASSERT_EQ(cpu_ops()->moe_experts(&ctx, &xt, &gt, &dt, &wt, &it, SABLE_ACT_SILU, &ot),
                  SABLE_OK);
        const auto got = emulate_moe(x, wgu, wd, w, ids, tokens, k, experts, hidden, inter);
        double num = 0, den = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
          num += (got[i] - ref[i]) * double(got[i] - ref[i]);
          den += double(ref[i]) * ref[i];
        }
        EXPECT_LT(std::sqrt(num / den), 1e-5);
      }
    }
  }
}

// ldmatrix.m8n8.x4 (PTX ISA): lanes 8q..8q+7 give the row addresses of matrix q; lane t then
// holds, in register q, elements (t / 4, 2 * (t % 4)) and (t / 4, 2 * (t % 4) + 1) of matrix q.
using Regs = std::array<std::array<float, 2>, 4>;  // 4 registers x 2 halves per lane
std::array<Regs, 32> ldmatrix_x4(const float* tile, int32_t ld,
                                 void (*src)(int32_t, int32_t*, int32_t*)) {
  std::array<Regs, 32> out{};
  for (int32_t q = 0; q < 4; ++q)
    for (int32_t t = 0; t < 32; ++t) {
      int32_t row = 0, col = 0;
      src(8 * q + t / 4, &row, &col);  // the lane that addressed row t/4 of matrix q
      out[t][q][0] = tile[row * ld + col + 2 * (t % 4)];
      out[t][q][1] = tile[row * ld + col + 2 * (t % 4) + 1];
    }
  return out;
}

TEST(MoeSchedule, FragmentMappingComputesTheProduct) {
  // A [16][16] (m, k) and B stored [16][16] (n, k): two n8 blocks, as the kernel's smem tiles.
  float a[16 * 16], b[16 * 16];
  for (int i = 0; i < 256; ++i) {
    a[i] = static_cast<float>((i * 7) % 13) - 6.0f;
    b[i] = static_cast<float>((i * 5) % 11) - 5.0f;
  }
  const auto af = ldmatrix_x4(a, 16, &a_frag_src);
  const auto bf = ldmatrix_x4(b, 16, &b_frag_src);
  for (int32_t nb = 0; nb < 2; ++nb) {
    // mma.m16n8k16 (PTX ISA fragment layout), groupID g = lane / 4, t = lane % 4:
    //  A reg r holds row g + 8 * (r % 2), cols 2t + {0,1} + 8 * (r / 2);
    //  B reg r holds k rows 2t + {0,1} + 8 * r of column n = g;
    //  C element i sits at row g + 8 * (i / 2), col 2t + (i % 2).
    float amat[16][16] = {}, bmat[16][8] = {};  // reassembled from the registers
    for (int32_t lane = 0; lane < 32; ++lane) {
      const int32_t g = lane / 4, t = lane % 4;
      for (int32_t r = 0; r < 4; ++r)
        for (int32_t h = 0; h < 2; ++h) amat[g + 8 * (r % 2)][2 * t + h + 8 * (r / 2)] = af[lane][r][h];
      for (int32_t r = 0; r < 2; ++r)
        for (int32_t h = 0; h < 2; ++h) bmat[2 * t + h + 8 * r][g] = bf[lane][2 * nb + r][h];
    }
    for (int32_t m = 0; m < 16; ++m)
      for (int32_t q = 0; q < 16; ++q) ASSERT_EQ(amat[m][q], a[m * 16 + q]) << m << "," << q;
    for (int32_t q = 0; q < 16; ++q)
      for (int32_t n = 0; n < 8; ++n) ASSERT_EQ(bmat[q][n], b[(nb * 8 + n) * 16 + q]) << q << "," << n;
    for (int32_t lane = 0; lane < 32; ++lane)
      for (int32_t i = 0; i < 4; ++i) {
        int32_t row = 0, col = 0;
        acc_pos(lane, i, &row, &col);
        float mma = 0.0f, ref = 0.0f;
        for (int32_t q = 0; q < 16; ++q) {
          mma += amat[row][q] * bmat[q][col];
          ref += a[row * 16 + q] * b[(nb * 8 + col) * 16 + q];
        }
        EXPECT_EQ(mma, ref) << "lane " << lane << " element " << i << " n-block " << nb;
      }
  }
}

}  // namespace
}  // namespace sable::ops::cuda::moe
