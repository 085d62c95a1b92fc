// What the CPU tests of the "flash" tensor-core kernels share: a lane-level emulation of the warp
// instructions they use (ldmatrix.m8n8.x4 with and without .trans, mma.sync.m16n8k16 bf16 -> fp32,
// bf16 rounding) with the fragment layouts of the PTX ISA, a naive fp64 attention to compare with,
// and the comparison. The kernel emulations in attention_flash_schedule_test and
// attention_flash_decode_test are built from these, so they check index math without a GPU.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "plugins/attention/flash/prefill_schedule.h"

namespace sable::attention::flash::emulation {

inline float bf16_round(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

using Regs = std::array<std::array<float, 2>, 4>;  // 4 registers x 2 bf16 halves
using Addr = std::array<int32_t, 32>;              // smem element offset each lane supplies

// ldmatrix.m8n8.x4 (PTX ISA): lanes 8q..8q+7 address the rows of matrix q; lane t gets, in register
// q, elements (t / 4, 2 * (t % 4) + {0, 1}) of matrix q; with .trans, elements
// (2 * (t % 4) + {0, 1}, t / 4).
inline std::array<Regs, 32> ldmatrix(const std::vector<float>& mem, const Addr& addr, bool trans) {
  std::array<Regs, 32> out{};
  for (int32_t q = 0; q < 4; ++q)
    for (int32_t t = 0; t < 32; ++t)
      for (int32_t h = 0; h < 2; ++h)
        out[t][q][h] = trans ? mem[addr[8 * q + 2 * (t % 4) + h] + t / 4]
                             : mem[addr[8 * q + t / 4] + 2 * (t % 4) + h];
  return out;
}

// mma.m16n8k16 with the PTX fragment layout (g = lane / 4, t = lane % 4): A register r holds row
// g + 8 (r % 2), cols 2t + {0,1} + 8 (r / 2); B register r holds k rows 2t + {0,1} + 8r of column
// g; C element i sits at row g + 8 (i / 2), col 2t + (i % 2).
inline void mma(std::array<std::array<float, 4>, 32>& c, const std::array<Regs, 32>& a,
         const std::array<std::array<std::array<float, 2>, 2>, 32>& b) {
  float am[16][16], bm[16][8];
  for (int32_t lane = 0; lane < 32; ++lane) {
    const int32_t g = lane / 4, t = lane % 4;
    for (int32_t r = 0; r < 4; ++r)
      for (int32_t h = 0; h < 2; ++h) am[g + 8 * (r % 2)][2 * t + h + 8 * (r / 2)] = a[lane][r][h];
    for (int32_t r = 0; r < 2; ++r)
      for (int32_t h = 0; h < 2; ++h) bm[2 * t + h + 8 * r][g] = b[lane][r][h];
  }
  for (int32_t lane = 0; lane < 32; ++lane)
    for (int32_t i = 0; i < 4; ++i) {
      const int32_t row = lane / 4 + 8 * (i / 2), col = 2 * (lane % 4) + i % 2;
      float s = 0.0f;
      for (int32_t k = 0; k < 16; ++k) s += am[row][k] * bm[k][col];
      c[lane][i] += s;
    }
}

// B operand of n-block `half` (0/1) from an x4 load.
inline std::array<std::array<std::array<float, 2>, 2>, 32> b_half(const std::array<Regs, 32>& r, int32_t half) {
  std::array<std::array<std::array<float, 2>, 2>, 32> b{};
  for (int32_t l = 0; l < 32; ++l) {
    b[l][0] = r[l][2 * half];
    b[l][1] = r[l][2 * half + 1];
  }
  return b;
}

// The smem element offset each lane supplies to an ldmatrix whose fragment source is `src`
// (a_frag_src, b_frag_src or v_frag_src) over the 16 x 16 block at (row0, col0) of a swizzled
// [rows][d] tile.
inline Addr frag_addr(void (*src)(int32_t, int32_t*, int32_t*), int32_t row0, int32_t col0, int32_t d) {
  Addr a{};
  for (int32_t lane = 0; lane < 32; ++lane) {
    int32_t r = 0, c = 0;
    src(lane, &r, &c);
    a[lane] = smem_off(row0 + r, col0 + c, d);
  }
  return a;
}

// Naive fp64 attention of one token: q [hq, d] over positions [begin, pos] of a [slots, hk, d]
// pool addressed through `pages`; writes out [hq, d].
inline void naive_attention(const float* q, int32_t hq, int32_t hk, int32_t d, const int32_t* pages,
                            int32_t page_size, int32_t begin, int32_t pos, const std::vector<float>& kpool,
                            const std::vector<float>& vpool, float* out) {
  const double scale = 1.0 / std::sqrt(double(d));
  for (int32_t h = 0; h < hq; ++h) {
    const int32_t kh = h / (hq / hk);
    std::vector<double> sc;
    double mx = -1e300;
    for (int32_t p = begin; p <= pos; ++p) {
      const int64_t off = kv_row_offset(pages, page_size, p, hk, kh, d);
      double dot = 0;
      for (int32_t c = 0; c < d; ++c) dot += double(q[size_t(h) * d + c]) * kpool[off + c];
      sc.push_back(dot * scale);
      mx = std::max(mx, sc.back());
    }
    double sum = 0;
    for (double& x : sc) sum += (x = std::exp(x - mx));
    for (int32_t c = 0; c < d; ++c) {
      double acc = 0;
      for (int32_t p = begin; p <= pos; ++p)
        acc += sc[p - begin] * vpool[kv_row_offset(pages, page_size, p, hk, kh, d) + c];
      out[size_t(h) * d + c] = float(acc / sum);
    }
  }
}

// bf16-level agreement: relative L2 error < 1e-2 over everything and < 3e-2 per element (one wrong
// row must not hide in the batch's norm); NaN (never written, or a poisoned input read) fails.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0, worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_FALSE(std::isnan(got[i])) << "element " << i << " never written or computed from a poisoned row";
    num += (got[i] - want[i]) * double(got[i] - want[i]);
    den += double(want[i]) * want[i];
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
  }
  EXPECT_LT(std::sqrt(num / den), 1e-2);
  EXPECT_LT(worst, 3e-2);
}

}  // namespace sable::attention::flash::emulation
