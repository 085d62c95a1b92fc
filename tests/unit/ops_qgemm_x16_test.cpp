// The x16 weight layout and the GEMMs over it (core/ops/cpu/qrepack.h, qkernels_x86_x16.inc,
// qkernels_amx_x16.inc): the layout keeps every row's values (its fp32 read-back equals the row
// layout's dequantization exactly); every table's x16 kernel agrees with the scalar table's dots
// within fp32 summation order for random quant bytes (Q8_0's -128 included), odd row counts (the
// last group's tail), K of 1, 3 and 28 blocks, 1..9 activation rows (one pass, two passes and a
// partial one) and on AMX 5..1100 (tiles of 8 or 16 rows, a short last chunk, blocks of rows;
// 2040 rows at K = 4864), a group range and a strided output whose other entries stay untouched;
// the LM head's x16 kernel agrees with the scalar head kernel and keeps its bound, at one row and
// (AMX, Q8_0) 2..16; and the gemm op (and its LM-head path) takes a registered weight's copy (1 or
// 2 threads, bias) until the weight is forgotten.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/ops/cpu/qrepack.h"
#include "tests/unit/ops_qgemm_fixture.h"

namespace sable::ops {
namespace {

using namespace qgemm_test;  // NOLINT(build/namespaces): the suite's shared fixture

const int32_t kX16Dtypes[] = {SABLE_DTYPE_Q8_0, SABLE_DTYPE_Q4_0, SABLE_DTYPE_Q4_1};

// n rows of k elements of random quant bytes with sane scales.
std::vector<std::byte> random_rows(int32_t dtype, int64_t n, int64_t k, std::mt19937& rng) {
  std::vector<std::byte> w(static_cast<size_t>(n * cpu::row_bytes(dtype, k)));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = static_cast<std::byte>(byte(rng));
  set_half_scales(dtype, w, rng);
  return w;
}

std::vector<std::byte> x16_of(int32_t dtype, const std::vector<std::byte>& w, int64_t n,
                              int64_t k) {
  std::vector<std::byte> out(static_cast<size_t>(cpu::x16_bytes(dtype, n, k)));
  cpu::x16_pack(dtype, w.data(), n, k, out.data());
  return out;
}

// Calls body(table, dtype, kernel, k, n, w, x16 copy of w) for every usable table whose `get`
// gives a kernel for an x16 dtype, over K of 1, 3 and 28 blocks and N tails around a group of 16;
// returns how many (table, dtype) pairs had a kernel.
template <class Get, class Body>
int for_each_x16_case(std::mt19937& rng, Get get, Body body) {
  int tested = 0;
  for (const QKernels* t : cpu::usable_kernels()) {
    for (const int32_t dtype : kX16Dtypes) {
      const auto kern = get(*t, dtype);
      if (kern == nullptr) continue;
      ++tested;
      for (const int64_t k : {32, 96, 896}) {
        for (const int64_t n : {1, 7, 16, 17, 50}) {
          const auto w = random_rows(dtype, n, k, rng);
          body(*t, dtype, kern, k, n, w, x16_of(dtype, w, n, k));
          if (::testing::Test::HasFatalFailure()) return tested;  // an ASSERT in body stops all
        }
      }
    }
  }
  return tested;
}

TEST_F(OpsQgemm, X16LayoutKeepsEveryRow) {
  const QKernels& ref = cpu::scalar_kernels();
  for (const int32_t dtype : kX16Dtypes) {
    for (const int64_t k : {32, 96, 896}) {
      for (const int64_t n : {1, 15, 16, 17, 33}) {
        const auto w = random_rows(dtype, n, k, rng_);
        const int64_t wrb = cpu::row_bytes(dtype, k);
        EXPECT_EQ(cpu::x16_bytes(dtype, n, k), (n + 15) / 16 * 16 * wrb);
        const auto p = x16_of(dtype, w, n, k);
        std::vector<float> want(static_cast<size_t>(k)), got(static_cast<size_t>(k));
        for (int64_t r = 0; r < n; ++r) {
          ref.dequantize_row(dtype, w.data() + r * wrb, want.data(), k);
          cpu::x16_dequantize_row(dtype, p.data(), k, r, got.data());
          ASSERT_EQ(got, want) << "dtype " << dtype << " K=" << k << " N=" << n << " row " << r;
        }
      }
    }
  }
}

TEST_F(OpsQgemm, X16KernelsAgreeWithTheScalarTable) {
  const QKernels& ref = cpu::scalar_kernels();
  const int tested = for_each_x16_case(
      rng_, [](const QKernels& t, int32_t dtype) { return t.x16_rows(dtype); },
      [&](const QKernels& table, int32_t dtype, QKernels::X16Rows kern, int64_t k, int64_t n,
          const std::vector<std::byte>& w, const std::vector<std::byte>& p) {
        const QKernels* t = &table;
        const int64_t wrb = cpu::row_bytes(dtype, k), nb = k / 32, groups = (n + 15) / 16;
        std::vector<float> deq(static_cast<size_t>(n * k));
        for (int64_t r = 0; r < n; ++r)
          ref.dequantize_row(dtype, w.data() + r * wrb, &deq[r * k], k);
        // 1..4 one zmm pass, 5..9 two or three; on the AMX table Q8_0 from 5 and Q4 from 9 rows
        // on tiles of 8 or 16 rows (a short last chunk), Q8_0 up to 64 rows with B straight from
        // the copy (several chunks from 17), 65 on the per-call tiles, 1100 in two blocks of rows
        // (small K only).
        for (const int64_t m : {1, 2, 3, 4, 5, 8, 9, 16, 17, 40, 64, 65, 1100}) {
          if (m == 1100 && k > 96) continue;
          const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
          std::vector<BlockQ8A> xq(static_cast<size_t>(m * nb));
          for (int64_t i = 0; i < m; ++i) ref.quantize_row(&x[i * k], &xq[i * nb], k);
          // All groups but the first (when there are two or more) into out[i * ldo + r].
          const int64_t g0 = groups > 1 ? 1 : 0, ldo = n + 3;
          std::vector<float> out(static_cast<size_t>(m * ldo), -1.0f);
          // With the table's prepared activations on even M, without (the kernel's own) on odd.
          const void* prep = t->x16_prep != nullptr && m % 2 == 0
                                 ? t->x16_prep(dtype, xq.data(), nb, m, k)
                                 : nullptr;
          kern(p.data(), g0, groups, n, xq.data(), nb, m, k, out.data(), ldo, prep);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t r = 0; r < ldo; ++r) {
              const float got = out[static_cast<size_t>(i * ldo + r)];
              if (r < g0 * 16 || r >= n) {
                ASSERT_EQ(got, -1.0f) << t->name << " wrote outside its rows: " << r;
                continue;
              }
              double mag = 0;
              for (int64_t e = 0; e < k; ++e) mag += std::fabs(deq[r * k + e] * x[i * k + e]);
              const float want = ref.qdot(dtype)(w.data() + r * wrb, &xq[i * nb], k);
              ASSERT_NEAR(got, want, 4e-6 * mag + 1e-6)
                  << t->name << " dtype " << dtype << " K=" << k << " N=" << n << " M=" << m
                  << " row " << i << " weight row " << r;
            }
          }
        }
      });
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
    EXPECT_GE(tested, 3) << "the AVX-512 table has the x16 kernels";
#endif
  if (tested == 0) GTEST_SKIP() << "no table with x16 kernels on this CPU";
}

// A prefill's row count at a large K (Qwen2.5-0.5B's down projection, K = 4864): the AMX kernel
// walks the rows in blocks sized by K (kX16SlotBytes, kX16RowBlock), remaking the tiles for each;
// every row of every block, the short last chunk included, is computed once and lands in its place
// (a skipped block keeps the -1 fill). A group pair and a single tail group of 8 rows.
TEST_F(OpsQgemm, X16KernelsCoverEveryRowBlockAtLargeK) {
  const QKernels& ref = cpu::scalar_kernels();
  const int32_t dtype = SABLE_DTYPE_Q8_0;
  const int64_t n = 40, k = 4864, m = 2040, nb = k / 32, groups = (n + 15) / 16;
  const auto w = random_rows(dtype, n, k, rng_);
  const auto p = x16_of(dtype, w, n, k);
  const int64_t wrb = cpu::row_bytes(dtype, k);
  const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
  std::vector<BlockQ8A> xq(static_cast<size_t>(m * nb));
  for (int64_t i = 0; i < m; ++i) ref.quantize_row(&x[i * k], &xq[i * nb], k);
  std::vector<float> deq(static_cast<size_t>(n * k)), want(static_cast<size_t>(m * n));
  std::vector<double> tol(want.size());  // fp32 summation order: 4e-6 of the sum of |products|
  for (int64_t r = 0; r < n; ++r) ref.dequantize_row(dtype, w.data() + r * wrb, &deq[r * k], k);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r) {
      want[i * n + r] = ref.qdot(dtype)(w.data() + r * wrb, &xq[i * nb], k);
      double mag = 0;
      for (int64_t e = 0; e < k; ++e) mag += std::fabs(deq[r * k + e] * x[i * k + e]);
      tol[i * n + r] = 4e-6 * mag + 1e-6;
    }
  int tested = 0;
  for (const QKernels* t : cpu::usable_kernels()) {
    const auto kern = t->x16_rows(dtype);
    if (kern == nullptr) continue;
    ++tested;
    std::vector<float> out(static_cast<size_t>(m * n), -1.0f);
    const void* prep = t->x16_prep != nullptr ? t->x16_prep(dtype, xq.data(), nb, m, k) : nullptr;
    kern(p.data(), 0, groups, n, xq.data(), nb, m, k, out.data(), n, prep);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t r = 0; r < n; ++r) {
        const float got = out[i * n + r], ok = want[i * n + r];
        ASSERT_NEAR(got, ok, tol[i * n + r])
            << t->name << " M=" << m << " row " << i << " weight row " << r;
      }
  }
  if (tested == 0) GTEST_SKIP() << "no table with x16 kernels on this CPU";
}

// The LM head's x16 kernel (one int16 activation row) against the scalar head_rows: logits up to
// fp32 summation order, the same bound, and every logit within its bound of the exact dot of the
// dequantized row with the unrounded activations; N tails, K of 1, 3 and 28 blocks, a group range.
TEST_F(OpsQgemm, X16HeadAgreesWithTheScalarHead) {
  const QKernels& ref = cpu::scalar_kernels();
  const int tested = for_each_x16_case(
      rng_, [](const QKernels& t, int32_t dtype) { return t.x16_head(dtype); },
      [&](const QKernels& table, int32_t dtype, QKernels::X16Head kern, int64_t k, int64_t n,
          const std::vector<std::byte>& w, const std::vector<std::byte>& p) {
        const QKernels* t = &table;
        const int64_t wrb = cpu::row_bytes(dtype, k), nb = k / 32, groups = (n + 15) / 16;
        const std::vector<float> x = random_floats(rng_, static_cast<size_t>(k));
        std::vector<cpu::BlockQ16A> xq(static_cast<size_t>(nb));
        ref.quantize_row16(x.data(), xq.data(), k);
        std::vector<float> want(static_cast<size_t>(n)), want_bound(want.size());
        ref.head_rows(dtype)(w.data(), wrb, n, xq.data(), nb, 1, k, want.data(), n,
                             want_bound.data(), n);
        const int64_t g0 = groups > 1 ? 1 : 0;
        std::vector<float> out(static_cast<size_t>(n), -1.0f), bound(out.size(), -1.0f);
        kern(p.data(), g0, groups, n, xq.data(), k, out.data(), bound.data());
        std::vector<float> deq(static_cast<size_t>(k));
        for (int64_t r = 0; r < n; ++r) {
          if (r < g0 * 16) {
            ASSERT_EQ(out[r], -1.0f);
            ASSERT_EQ(bound[r], -1.0f);
            continue;
          }
          ref.dequantize_row(dtype, w.data() + r * wrb, deq.data(), k);
          const double exact = dot(deq.data(), x.data(), k);
          ASSERT_NEAR(out[r], want[r], 1e-5 * (1.0 + std::fabs(want[r])))
              << t->name << " dtype " << dtype << " K=" << k << " N=" << n << " row " << r;
          ASSERT_NEAR(bound[r], want_bound[r], 1e-5 * want_bound[r]) << t->name << " row " << r;
          ASSERT_LE(std::fabs(out[r] - exact), bound[r] * 1.0001 + 1e-4) << t->name << " row " << r;
        }
      });
  if (tested == 0) GTEST_SKIP() << "no table with the x16 head kernel on this CPU";
}

// The LM head's AMX kernel over the x16 copy (2..16 int16 activation rows, Q8_0) against the
// scalar head_rows: logits up to fp32 summation order, the same bound, every logit within its
// bound of the exact dot; tiles of 8 and 16 rows, N tails, K of 1, 3 and 28 blocks, a group range.
TEST_F(OpsQgemm, X16HeadRowsAgreeWithTheScalarHead) {
  const QKernels& ref = cpu::scalar_kernels();
  const int tested = for_each_x16_case(
      rng_,
      [](const QKernels& t, int32_t dtype) {
        return dtype == SABLE_DTYPE_Q8_0 ? t.q8_0_x16_head_rows : nullptr;
      },
      [&](const QKernels& table, int32_t dtype, QKernels::X16HeadRows kern, int64_t k, int64_t n,
          const std::vector<std::byte>& w, const std::vector<std::byte>& p) {
        const int64_t wrb = cpu::row_bytes(dtype, k), nb = k / 32, groups = (n + 15) / 16;
        const int64_t g0 = groups > 1 ? 1 : 0;
        std::vector<float> deq(static_cast<size_t>(n * k));
        for (int64_t r = 0; r < n; ++r)
          ref.dequantize_row(dtype, w.data() + r * wrb, &deq[r * k], k);
        for (const int64_t m : {2, 3, 8, 9, 16}) {
          const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
          std::vector<cpu::BlockQ16A> xq(static_cast<size_t>(m * nb));
          for (int64_t i = 0; i < m; ++i) ref.quantize_row16(&x[i * k], &xq[i * nb], k);
          std::vector<float> want(static_cast<size_t>(m * n)), want_bound(want.size());
          ref.head_rows(dtype)(w.data(), wrb, n, xq.data(), nb, m, k, want.data(), n,
                               want_bound.data(), n);
          std::vector<float> out(want.size(), -1.0f), bound(want.size(), -1.0f);
          kern(p.data(), g0, groups, n, xq.data(), nb, m, k, out.data(), n, bound.data(), n);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t r = 0; r < n; ++r) {
              const size_t o = static_cast<size_t>(i * n + r);
              if (r < g0 * 16) {
                ASSERT_EQ(out[o], -1.0f);
                ASSERT_EQ(bound[o], -1.0f);
                continue;
              }
              const double exact = dot(&deq[r * k], &x[i * k], k);
              ASSERT_NEAR(out[o], want[o], 1e-5 * (1.0 + std::fabs(want[o])))
                  << table.name << " K=" << k << " N=" << n << " M=" << m << " row " << i
                  << " weight row " << r;
              ASSERT_NEAR(bound[o], want_bound[o], 1e-5 * want_bound[o]) << table.name;
              ASSERT_LE(std::fabs(out[o] - exact), bound[o] * 1.0001 + 1e-4) << table.name;
            }
        }
      });
  if (tested == 0) GTEST_SKIP() << "no table with the x16 head-rows kernel on this CPU";
}

TEST_F(OpsQgemm, GemmTakesARegisteredWeightsX16Copy) {
  const QKernels& best = cpu::best_kernels();
  const int64_t n = 37, k = 160;
  cpu::set_int8_activations(true);
  for (const int32_t dtype : kX16Dtypes) {
    auto w = random_rows(dtype, n, k, rng_);
    std::vector<float> bias = random_floats(rng_, n);
    std::vector<std::vector<float>> plain;
    std::vector<std::vector<float>> xs;
    for (int64_t m = 1; m <= 9; ++m) {
      xs.push_back(random_floats(rng_, static_cast<size_t>(m * k)));
      plain.push_back(gemm(dtype, w.data(), n, k, xs.back(), m, &bias));
    }
    cpu::x16_register(dtype, w.data(), n, k);
    EXPECT_EQ(cpu::x16_copy(dtype, w.data(), n + 1, k), nullptr);  // another shape: not this one
    EXPECT_EQ(cpu::x16_copy(SABLE_DTYPE_Q4_K, w.data(), n, k), nullptr);
    for (int64_t m = 1; m <= 9; ++m) {
      auto& x = xs[static_cast<size_t>(m - 1)];
      cpu::set_threads(1);
      const auto one = gemm(dtype, w.data(), n, k, x, m, &bias);
      cpu::set_threads(2);
      const auto two = gemm(dtype, w.data(), n, k, x, m, &bias);
      EXPECT_EQ(one, two) << "dtype " << dtype << " M=" << m;
      const auto& want = plain[static_cast<size_t>(m - 1)];
      for (size_t i = 0; i < one.size(); ++i)
        ASSERT_NEAR(one[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << "M=" << m << " at " << i;
    }
    const bool used = best.x16_rows(dtype) != nullptr && best.x16_max(dtype) > 0;
    EXPECT_EQ(cpu::x16_copy(dtype, w.data(), n, k) != nullptr, true);
    // The copy is what the op reads: with the row bytes changed, only an unregistered weight's
    // product moves.
    std::vector<float> x1 = xs[0];
    const auto before = gemm(dtype, w.data(), n, k, x1, 1);
    std::memset(w.data(), 0, w.size());
    const auto after = gemm(dtype, w.data(), n, k, x1, 1);
    EXPECT_EQ(before == after, used) << "dtype " << dtype;
    // The LM head's path (kPreciseActivations) at batch 1 reads the copy too: the logits of the
    // rows it does not recheck in fp32 (from the zeroed row bytes) are the copy's, not zero.
    const bool head_used = best.x16_head(dtype) != nullptr;
    bool nonzero = false;
    for (float v : gemm(dtype, w.data(), n, k, x1, 1, nullptr, true)) nonzero |= v != 0.0f;
    EXPECT_EQ(nonzero, head_used) << "dtype " << dtype;
    // And at batch 5 where the table has the head-rows kernel (the AMX table's Q8_0).
    const bool head_rows_used = dtype == SABLE_DTYPE_Q8_0 && best.q8_0_x16_head_rows != nullptr;
    nonzero = false;
    for (float v : gemm(dtype, w.data(), n, k, xs[4], 5, nullptr, true)) nonzero |= v != 0.0f;
    EXPECT_EQ(nonzero, head_rows_used) << "dtype " << dtype;
    cpu::x16_forget(w.data(), w.size());
    EXPECT_EQ(cpu::x16_copy(dtype, w.data(), n, k), nullptr);
    const auto forgotten = gemm(dtype, w.data(), n, k, x1, 1);
    for (float v : forgotten) EXPECT_EQ(v, 0.0f);
  }
}

// A prefill-sized GEMM over a registered weight: its activations are quantized, and on the AMX
// table put in the tiles' A order (x16_slots), by the pool's threads from 64K activations on. One
// and two threads give the same bits, near the row layout's product.
TEST_F(OpsQgemm, PrefillSizedX16GemmIsTheSameAtAnyThreadCount) {
  const int64_t n = 48, k = 256, m = 300;  // 300 x 8 blocks: past both split thresholds
  cpu::set_int8_activations(true);
  for (const int32_t dtype : kX16Dtypes) {
    auto w = random_rows(dtype, n, k, rng_);
    std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
    cpu::set_threads(1);
    const auto plain = gemm(dtype, w.data(), n, k, x, m);
    cpu::x16_register(dtype, w.data(), n, k);
    const auto one = gemm(dtype, w.data(), n, k, x, m);
    cpu::set_threads(2);
    const auto two = gemm(dtype, w.data(), n, k, x, m);
    EXPECT_EQ(one, two) << "dtype " << dtype;
    for (size_t i = 0; i < one.size(); ++i)
      ASSERT_NEAR(two[i], plain[i], 1e-4 * (1 + std::fabs(plain[i])))
          << "dtype " << dtype << " at " << i;
    cpu::x16_forget(w.data(), w.size());
  }
}

// The copies are a second copy of the weights: they stay within the budget, and a weight whose
// copy would pass it keeps the row layout (and the same products).
TEST_F(OpsQgemm, X16CopiesStayWithinTheirBudget) {
  const int64_t n = 48, k = 128;
  const int32_t dtype = SABLE_DTYPE_Q8_0;
  auto a = random_rows(dtype, n, k, rng_);
  auto b = random_rows(dtype, n, k, rng_);
  const int64_t bytes = cpu::x16_bytes(dtype, n, k);
  const int64_t before = cpu::x16_copied_bytes();
  cpu::x16_set_budget(before + bytes);  // room for one copy
  cpu::x16_register(dtype, a.data(), n, k);
  cpu::x16_register(dtype, b.data(), n, k);
  EXPECT_NE(cpu::x16_copy(dtype, a.data(), n, k), nullptr);
  EXPECT_EQ(cpu::x16_copied_bytes(), before + bytes);
  EXPECT_EQ(cpu::x16_copy(dtype, b.data(), n, k), nullptr) << "over the budget";
  EXPECT_EQ(cpu::x16_copied_bytes(), before + bytes);
  // The refused weight's GEMM reads its rows: zeroing them zeroes the product.
  cpu::set_int8_activations(true);
  cpu::set_threads(1);
  std::vector<float> x = random_floats(rng_, static_cast<size_t>(k));
  std::memset(b.data(), 0, b.size());
  for (float v : gemm(dtype, b.data(), n, k, x, 1)) EXPECT_EQ(v, 0.0f);
  cpu::x16_forget(a.data(), a.size());
  cpu::x16_forget(b.data(), b.size());
  EXPECT_EQ(cpu::x16_copied_bytes(), before) << "a forgotten copy gives its bytes back";
  cpu::x16_set_budget(-1);
}

}  // namespace
}  // namespace sable::ops
