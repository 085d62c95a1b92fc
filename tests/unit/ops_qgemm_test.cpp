// The CPU ops over packed weights (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, BF16, F16): every kernel
// table this CPU runs (AVX2, AVX-VNNI, AVX-512 VNNI) against the scalar one; the int8 dot against
// the exact dot of the dequantized weights, within the bound activation quantization allows; the
// gemm op (int8 kernels, or fp32 rows and panels, bias, strided
// output, 1 or 2 threads) against gemm over the dequantized fp32 weights; embedding and copy of
// packed tensors; and the errors for packed tensors an op cannot take.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/ops_qgemm_fixture.h"

namespace sable::ops {
namespace {

using namespace qgemm_test;  // NOLINT(build/namespaces): the suite's shared fixture

// Every SIMD table quantizes activations to the same bytes as the scalar one and its dots agree
// with the scalar dots up to fp32 summation order; weights here are random bytes (every bit
// pattern of the quants, including Q8_0's -128) with sane scales.
TEST_F(OpsQgemm, EveryKernelTableAgreesWithTheScalarOne) {
  const QKernels& ref = cpu::scalar_kernels();
  const auto tables = cpu::usable_kernels();
  ASSERT_EQ(tables.front(), &ref);
#if defined(__x86_64__)
  EXPECT_EQ(tables.size() > 1, __builtin_cpu_supports("avx2") != 0);  // the AVX2 table runs here
#endif
  const int64_t k = 512, rows = 6;
  std::vector<float> x = random_floats(rng_, k);
  std::vector<BlockQ8A> xq_ref(k / 32), xq(k / 32);
  ref.quantize_row(x.data(), xq_ref.data(), k);
  std::uniform_int_distribution<int> byte(0, 255);
  for (const QKernels* t : tables) {
    t->quantize_row(x.data(), xq.data(), k);
    ASSERT_EQ(std::memcmp(xq.data(), xq_ref.data(), xq.size() * sizeof(BlockQ8A)), 0) << t->name;
    for (const Format& f : kFormats) {
      std::vector<std::byte> w(static_cast<size_t>(cpu::row_bytes(f.dtype, k) * rows));
      for (auto& b : w) b = static_cast<std::byte>(byte(rng_));
      if (f.dtype == SABLE_DTYPE_BF16 || f.dtype == SABLE_DTYPE_F16) {  // random halves: NaNs
        const auto wf = random_floats(rng_, static_cast<size_t>(k * rows));
        w = gguf::quantize(f.ggml, wf.data(), rows, k);
      } else {
        set_half_scales(f.dtype, w, rng_);
      }
      std::vector<float> deq(static_cast<size_t>(k));
      for (int64_t r = 0; r < rows; ++r) {
        const std::byte* wr = w.data() + r * cpu::row_bytes(f.dtype, k);
        ref.dequantize_row(f.dtype, wr, deq.data(), k);
        std::vector<float> mine(static_cast<size_t>(k));
        t->dequantize_row(f.dtype, wr, mine.data(), k);
        double mag = 0;
        for (int64_t i = 0; i < k; ++i) mag += std::fabs(deq[i] * x[i]);
        for (int64_t i = 0; i < k; ++i)
          ASSERT_NEAR(mine[i], deq[i], 1e-6 * (1 + std::fabs(deq[i]))) << t->name << " " << f.name;
        const float a = t->qdot(f.dtype) ? t->qdot(f.dtype)(wr, xq.data(), k)
                                         : t->fdot(f.dtype)(wr, x.data(), k);
        const float b = ref.qdot(f.dtype) ? ref.qdot(f.dtype)(wr, xq_ref.data(), k)
                                          : ref.fdot(f.dtype)(wr, x.data(), k);
        EXPECT_NEAR(a, b, 2e-6 * mag + 1e-6) << t->name << " " << f.name << " row " << r;
      }
    }
  }
}

// Every table's SiLU row (its register width, silu_lanes.h) is x / (1 + exp(-x)) within a few
// ulp (1e-33 absolute below exp's clamp at -87), times u when given, over lengths that end
// mid-vector and inputs from -120 to 120, zero and signed zero included; y may be x (act_row
// works in place).
TEST_F(OpsQgemm, EveryTableSiluRowIsSiluTimesUp) {
  std::uniform_real_distribution<float> wide(-120.0f, 120.0f), narrow(-6.0f, 6.0f);
  for (const int64_t n : {1, 3, 7, 8, 15, 16, 17, 33, 100}) {
    std::vector<float> x(static_cast<size_t>(n)), u(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      x[i] = i % 3 == 0 ? wide(rng_) : narrow(rng_);
      u[i] = narrow(rng_);
    }
    x[0] = n % 2 == 0 ? -0.0f : 0.0f;
    for (const QKernels* t : cpu::usable_kernels()) {
      ASSERT_NE(t->silu_row, nullptr) << t->name;
      for (const bool gated : {false, true}) {
        std::vector<float> y = x;
        t->silu_row(y.data(), gated ? u.data() : nullptr, y.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double xi = x[i], want = xi / (1.0 + std::exp(-xi)) * (gated ? u[i] : 1.0);
          ASSERT_NEAR(y[i], want, 1e-6 * std::fabs(want) + 1e-33)
              << t->name << " n " << n << " x " << x[i] << (gated ? " gated" : "");
        }
      }
    }
  }
}

// The multi-row kernels give exactly what the single-row kernel gives for each (weight row,
// activation row) pair (from the table's rows_exact_below on, within fp32 summation order): one activation row (each weight row streamed once), 2..9 rows (a tile of 8
// and every partial tile), prefill sizes (full tiles plus a tail), odd weight-row counts, K of 1,
// 3 and 8 blocks (not a multiple of anything the tiles could assume), into a strided output whose
// gaps stay untouched.
TEST_F(OpsQgemm, MultiRowKernelsEqualTheSingleRowOnes) {
  for (const int64_t k : {32, 96, 256}) {
    for (const int64_t n : {1, 7, 11}) {
      for (const int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 18, 21, 40}) {
        const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
        for (const QKernels* t : cpu::usable_kernels()) {
          std::vector<BlockQ8A> xq(static_cast<size_t>(m * k / 32));
          for (int64_t i = 0; i < m; ++i)
            t->quantize_row(x.data() + i * k, xq.data() + i * k / 32, k);
          for (const Format& f : kFormats) {
            if (!t->qdot_rows(f.dtype)) continue;
            const Packed p = pack(f, random_floats(rng_, static_cast<size_t>(n * k)), n, k);
            const int64_t wrb = cpu::row_bytes(f.dtype, k), ldo = n + 2;
            std::vector<float> out(static_cast<size_t>(m * ldo), -1.0f);
            t->qdot_rows(f.dtype)(p.bytes.data(), wrb, n, xq.data(), k / 32, m, k, out.data(), ldo);
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t r = 0; r < n; ++r) {
                const float got = out[static_cast<size_t>(i * ldo + r)];
                const float want =
                    t->qdot(f.dtype)(p.bytes.data() + r * wrb, xq.data() + i * k / 32, k);
                if (m < t->rows_exact_below) {
                  ASSERT_EQ(got, want) << t->name << " " << f.name << " K=" << k << " N=" << n
                                       << " M=" << m << " row " << i << " weight row " << r;
                  continue;
                }
                // The AVX-512 / AMX tiles: the same integers, fp32 sums in another order.
                double mag = 0;
                for (int64_t e = 0; e < k; ++e)
                  mag += std::fabs(p.deq[static_cast<size_t>(r * k + e)] * x[i * k + e]);
                ASSERT_NEAR(got, want, 4e-6 * mag + 1e-6)
                    << t->name << " " << f.name << " K=" << k << " N=" << n << " M=" << m
                    << " row " << i << " weight row " << r;
              }
              EXPECT_EQ(out[static_cast<size_t>(i * ldo + n)], -1.0f);  // the stride is respected
              EXPECT_EQ(out[static_cast<size_t>(i * ldo + n + 1)], -1.0f);
            }
          }
        }
      }
    }
  }
}

// The tiles against the scalar table's kernels (x86 tables only): for every M of 1..9 and a
// prefill size, the Q8_0 / Q4_0 / Q4_1 multi-row outputs stay within fp32 summation order of the
// scalar single-row dots, with the same activation blocks.
TEST_F(OpsQgemm, MultiRowKernelsAgreeWithTheScalarTable) {
  const QKernels& ref = cpu::scalar_kernels();
  const int64_t k = 160, n = 5;
  for (const int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 27}) {
    const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
    std::vector<BlockQ8A> xq(static_cast<size_t>(m * k / 32));
    for (int64_t i = 0; i < m; ++i) ref.quantize_row(x.data() + i * k, xq.data() + i * k / 32, k);
    for (const QKernels* t : cpu::usable_kernels()) {
      for (const Format& f : kFormats) {
        if (!t->qdot_rows(f.dtype)) continue;
        const Packed p = pack(f, random_floats(rng_, static_cast<size_t>(n * k)), n, k);
        const int64_t wrb = cpu::row_bytes(f.dtype, k);
        std::vector<float> out(static_cast<size_t>(m * n));
        t->qdot_rows(f.dtype)(p.bytes.data(), wrb, n, xq.data(), k / 32, m, k, out.data(), n);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t r = 0; r < n; ++r) {
            const float* wf = p.deq.data() + r * k;
            double mag = 0;
            for (int64_t e = 0; e < k; ++e) mag += std::fabs(wf[e] * x[i * k + e]);
            const float want = ref.qdot(f.dtype)(p.bytes.data() + r * wrb, xq.data() + i * k / 32, k);
            EXPECT_NEAR(out[static_cast<size_t>(i * n + r)], want, 4e-6 * mag + 1e-6)
                << t->name << " " << f.name << " M=" << m << " row " << i << " weight row " << r;
          }
        }
      }
    }
  }
}

// The AMX table (where the CPU has AMX-INT8 and Linux grants the tile state; skipped elsewhere):
// its multi-row kernels from 8 (Q8_0) or 4 (Q4_0 / Q4_1) activation rows on run AMX tiles of up
// to 16 activation rows x 16 weight rows per 32-element block. Against the scalar table's dots
// with the same activation blocks, within fp32 summation order: full and partial tiles on both
// sides (N = 16, 17, 33; M = 4, 5, 8, 9, 16, 17, 31, 48: every accumulator count), K of 1, 3 and
// 28 blocks, into a strided output whose gaps stay untouched.
TEST_F(OpsQgemm, AmxTilesAgreeWithTheScalarTable) {
  const QKernels* amx = nullptr;
  for (const QKernels* t : cpu::usable_kernels())
    if (std::string(t->name) == "amx") amx = t;
  if (amx == nullptr) GTEST_SKIP() << "no AMX-INT8 on this CPU, or Linux refused the tile state";
  const char* want = std::getenv("SABLE_CPU_KERNELS");  // unset, empty or "amx": AMX is chosen
  EXPECT_EQ(&cpu::best_kernels() == amx,
            want == nullptr || *want == '\0' || std::string(want) == "amx");
  const QKernels& ref = cpu::scalar_kernels();
  for (const int64_t k : {32, 96, 896}) {
    for (const int64_t n : {16, 17, 33}) {
      for (const int64_t m : {2, 3, 4, 5, 8, 9, 16, 17, 31, 48}) {
        const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
        std::vector<BlockQ8A> xq(static_cast<size_t>(m * k / 32));
        for (int64_t i = 0; i < m; ++i)
          ref.quantize_row(x.data() + i * k, xq.data() + i * k / 32, k);
        for (const Format& f : kFormats) {
          if (!amx->qdot_rows(f.dtype)) continue;
          const Packed p = pack(f, random_floats(rng_, static_cast<size_t>(n * k)), n, k);
          const int64_t wrb = cpu::row_bytes(f.dtype, k), ldo = n + 1;
          std::vector<float> out(static_cast<size_t>(m * ldo), -1.0f);
          amx->qdot_rows(f.dtype)(p.bytes.data(), wrb, n, xq.data(), k / 32, m, k, out.data(), ldo);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t r = 0; r < n; ++r) {
              double mag = 0;
              for (int64_t e = 0; e < k; ++e)
                mag += std::fabs(p.deq[static_cast<size_t>(r * k + e)] * x[i * k + e]);
              const float want =
                  ref.qdot(f.dtype)(p.bytes.data() + r * wrb, xq.data() + i * k / 32, k);
              ASSERT_NEAR(out[static_cast<size_t>(i * ldo + r)], want, 4e-6 * mag + 1e-6)
                  << f.name << " K=" << k << " N=" << n << " M=" << m << " row " << i
                  << " weight row " << r;
            }
            EXPECT_EQ(out[static_cast<size_t>(i * ldo + n)], -1.0f);
          }
        }
      }
    }
  }
}

// The fp32-activation row kernels (1-6 rows: every group size) match the dequantized row's dot up
// to fp32 summation order, in every table and for every packed format.
TEST_F(OpsQgemm, Fp32RowKernelsMatchTheDequantizedDots) {
  const int64_t k = 512, m = 6;
  const std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
  for (const QKernels* t : cpu::usable_kernels()) {
    for (const Format& f : kFormats) {
      const Packed p = pack(f, random_floats(rng_, static_cast<size_t>(2 * k), 0.05f), 2, k);
      const std::byte* w1 = p.bytes.data() + cpu::row_bytes(f.dtype, k);
      for (int64_t rows = 1; rows <= m; ++rows) {
        std::vector<float> out(static_cast<size_t>(2 * rows), -1.0f);
        t->fdot_rows(f.dtype, w1, x.data(), k, rows, k, out.data(), 2);
        for (int64_t i = 0; i < rows; ++i) {
          const float* xr = x.data() + i * k;
          double mag = 0;
          for (int64_t e = 0; e < k; ++e) mag += std::fabs(p.deq[k + e] * xr[e]);
          EXPECT_NEAR(out[2 * i], dot(p.deq.data() + k, xr, k), 2e-6 * mag + 1e-6)
              << t->name << " " << f.name << " rows " << rows << " row " << i;
          EXPECT_EQ(out[2 * i + 1], -1.0f);
        }
      }
    }
  }
}

// The int8 dot differs from the exact dot of the dequantized weights only by the rounding of the
// activations: at most half a step d of each activation block times the block's sum of |w|.
TEST_F(OpsQgemm, Int8DotIsExactUpToActivationRounding) {
  const QKernels& kern = cpu::best_kernels();
  const int64_t k = 1024, rows = 8;
  const std::vector<float> x = random_floats(rng_, k, 3.0f);
  std::vector<BlockQ8A> xq(k / 32);
  kern.quantize_row(x.data(), xq.data(), k);
  for (const Format& f : kFormats) {
    if (!kern.qdot(f.dtype)) continue;
    const Packed p = pack(f, random_floats(rng_, static_cast<size_t>(k * rows), 0.05f), rows, k);
    for (int64_t r = 0; r < rows; ++r) {
      const float* wf = p.deq.data() + r * k;
      double bound = 1e-6;
      for (int64_t b = 0; b < k / 32; ++b) {
        double sw = 0;
        for (int j = 0; j < 32; ++j) sw += std::fabs(wf[32 * b + j]);
        bound += sw * xq[b].d * 0.5 * 1.001;
      }
      const float got = kern.qdot(f.dtype)(p.bytes.data() + r * cpu::row_bytes(f.dtype, k),
                                           xq.data(), k);
      EXPECT_NEAR(got, dot(wf, x.data(), k), bound) << f.name << " row " << r;
    }
  }
}

// gemm over packed weights against gemm over their dequantized fp32 copy (made by the copy op):
// with int8 activations on, every M of Q8_0 / Q4_0 / Q4_1 (x86 tables) and decode-sized M of the others through
// the int8 kernels (activation rounding: relative L2 error under 1e-2); otherwise fp32 activations
// against unpacked rows at decode sizes and fp32 panels at prefill sizes (the same fp32 products:
// 1e-5); with a bias, on 1 and 2 threads (the row split changes nothing: bit-identical).
TEST_F(OpsQgemm, GemmMatchesTheDequantizedWeights) {
  const int64_t n = 72, k = 512;
  for (const Format& f : kFormats) {
    Packed p = pack(f, random_floats(rng_, static_cast<size_t>(n * k), 0.05f), n, k);
    std::vector<float> unpacked(static_cast<size_t>(n * k));
    SableTensor src = cpp::make_tensor(p.bytes.data(), f.dtype, {n, k});
    SableTensor dst = cpp::make_tensor(unpacked.data(), SABLE_DTYPE_F32, {n, k});
    ASSERT_EQ(ops_->copy(&ctx_, &src, &dst), SABLE_OK) << f.name;
    for (size_t i = 0; i < unpacked.size(); ++i)
      ASSERT_NEAR(unpacked[i], p.deq[i], 1e-6 * (1 + std::fabs(p.deq[i]))) << f.name << " at " << i;
    std::vector<float> bias = random_floats(rng_, n);
    for (const bool int8 : {true, false}) {
    cpu::set_int8_activations(int8);
    // 160 rows: activations quantized by the pool's threads (qgemm.cpp quantize_rows).
    for (int64_t m : {1, 3, 8, 23, 24, 40, 160}) {
      std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
      cpu::set_threads(1);
      const auto one = gemm(f.dtype, p.bytes.data(), n, k, x, m, &bias);
      cpu::set_threads(2);
      const auto two = gemm(f.dtype, p.bytes.data(), n, k, x, m, &bias);
      const auto ref = gemm(SABLE_DTYPE_F32, unpacked.data(), n, k, x, m, &bias);
      EXPECT_EQ(one, two) << f.name << " M=" << m;
      const bool half = f.dtype == SABLE_DTYPE_BF16 || f.dtype == SABLE_DTYPE_F16;
      // int8 activations for every M of Q8_0 / Q4_0 / Q4_1 where the table tiles them, for
      // decode M otherwise.
      const bool tiles = cpu::best_kernels().int8_tiles && cpu::best_kernels().qdot_rows(f.dtype);
      const double tol = ((m >= 24 && !tiles) || half || !int8) ? 1e-5 : 1e-2;
      EXPECT_LE(rel_l2(two, ref), tol) << f.name << " M=" << m << " int8 " << int8;
    }
    }
  }
}

// A weight the host marked kPreciseActivations (the LM head) keeps fp32 activations: decode rows
// then match the dequantized weights to fp32 rounding instead of the int8 tolerance.
TEST_F(OpsQgemm, PreciseWeightsKeepFp32Activations) {
  const int64_t n = 40, k = 256;
  for (const Format& f : kFormats) {
    if (sable_dtype_block_elems(f.dtype) == 0) continue;
    Packed p = pack(f, random_floats(rng_, static_cast<size_t>(n * k), 0.05f), n, k);
    for (int64_t m : {1, 2, 3, 5, 8}) {
      std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
      std::vector<float> out(static_cast<size_t>(m * n));
      SableTensor xt = cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {m, k});
      SableTensor wt = cpp::make_tensor(p.bytes.data(), f.dtype, {n, k});
      wt.reserved = cpu::kPreciseActivations;
      SableTensor ot = cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {m, n});
      ASSERT_EQ(ops_->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
      const auto ref = gemm(SABLE_DTYPE_F32, p.deq.data(), n, k, x, m);
      EXPECT_LE(rel_l2(out, ref), 1e-5) << f.name << " M=" << m;
    }
  }
}

// A decode step writes a column block of a wider output (a strided view) and leaves the rest.
TEST_F(OpsQgemm, GemmWritesAStridedOutput) {
  const int64_t n = 64, k = 256, m = 2;
  Packed p = pack(kFormats[2], random_floats(rng_, static_cast<size_t>(n * k)), n, k);
  std::vector<float> x = random_floats(rng_, static_cast<size_t>(m * k));
  const auto ref = gemm(SABLE_DTYPE_Q4_1, p.bytes.data(), n, k, x, m);
  std::vector<float> wide(static_cast<size_t>(m * (n + 8)), 7.0f);
  SableTensor xt = cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {m, k});
  SableTensor wt = cpp::make_tensor(p.bytes.data(), SABLE_DTYPE_Q4_1, {n, k});
  SableTensor ot = cpp::narrow(cpp::make_tensor(wide.data(), SABLE_DTYPE_F32, {m, n + 8}), 1, 4, n);
  ASSERT_EQ(ops_->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n + 8; ++j) {
      const float v = wide[static_cast<size_t>(i * (n + 8) + j)];
      if (j < 4 || j >= n + 4) EXPECT_EQ(v, 7.0f);
      else EXPECT_EQ(v, ref[static_cast<size_t>(i * n + j - 4)]);
    }
  }
}

TEST_F(OpsQgemm, EmbeddingOfAQuantizedTableUnpacksTheRows) {
  const int64_t v = 40, h = 256;
  for (const Format& f : kFormats) {
    if (sable_dtype_block_elems(f.dtype) == 0) continue;
    Packed p = pack(f, random_floats(rng_, static_cast<size_t>(v * h)), v, h);
    std::vector<int32_t> ids = {3, 0, 39, 3};
    std::vector<float> out(ids.size() * h);
    SableTensor table = cpp::make_tensor(p.bytes.data(), f.dtype, {v, h});
    SableTensor it = cpp::make_tensor(ids.data(), SABLE_DTYPE_I32, {4});
    SableTensor ot = cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {4, h});
    ASSERT_EQ(ops_->embedding(&ctx_, &table, &it, &ot), SABLE_OK) << f.name;
    for (size_t t = 0; t < ids.size(); ++t)
      for (int64_t j = 0; j < h; ++j)
        ASSERT_NEAR(out[t * h + j], p.deq[ids[t] * h + j], 1e-6 * (1 + std::fabs(out[t * h + j])))
            << f.name;
  }
}

TEST_F(OpsQgemm, PackedTensorsAnOpCannotTakeAreErrors) {
  std::vector<std::byte> w(34 * 8);
  std::vector<float> x(48), out(64);
  // K = 48 is not a whole number of Q8_0 blocks.
  SableTensor wt = cpp::make_tensor(w.data(), SABLE_DTYPE_Q8_0, {4, 48});
  SableTensor xt = cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {1, 48});
  SableTensor ot = cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {1, 4});
  EXPECT_EQ(ops_->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ctx_.last_error).find("whole Q8_0 blocks"), std::string::npos)
      << ctx_.last_error;
  // Rows of a quantized tensor cannot be gathered or added.
  SableTensor q = cpp::make_tensor(w.data(), SABLE_DTYPE_Q8_0, {8, 32});
  std::vector<int32_t> rows = {1};
  SableTensor rt = cpp::make_tensor(rows.data(), SABLE_DTYPE_I32, {1});
  SableTensor qo = cpp::make_tensor(w.data(), SABLE_DTYPE_Q8_0, {1, 32});
  EXPECT_EQ(ops_->gather_rows(&ctx_, &q, &rt, &qo), SABLE_ERR_INVALID_ARGUMENT);
  SableTensor fo = cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {2, 32});
  SableTensor q2 = cpp::make_tensor(w.data(), SABLE_DTYPE_Q8_0, {2, 32});
  EXPECT_EQ(ops_->add(&ctx_, &q2, &q2, &fo), SABLE_ERR_INVALID_ARGUMENT);
  // And the SDK's narrow refuses to slice one (its byte offset is not element * size).
  EXPECT_THROW(cpp::narrow(q, 0, 1, 2), cpp::Error);
}

}  // namespace
}  // namespace sable::ops
