// The LM head's integer path (qgemm.cpp head_gemm, with int8 activations on): int16 activation
// blocks quantized alike by every kernel table, head kernels that agree with the scalar one and
// stay within their stated rounding bound of the exact dot, and a gemm whose argmax and argmax
// logit are the fp32 path's even where the integer logits tie or misorder near-equal rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tests/unit/ops_qgemm_fixture.h"

namespace sable::ops {
namespace {

using namespace qgemm_test;  // NOLINT(build/namespaces): the suite's shared fixture
using cpu::BlockQ16A;

const Format kHeadFormats[] = {kFormats[0], kFormats[1], kFormats[2]};  // Q8_0, Q4_0, Q4_1

// Activations with outliers (the rows a head sees after the final norm), so blocks differ in step.
std::vector<float> head_activations(std::mt19937& rng, size_t n) {
  std::vector<float> x = random_floats(rng, n);
  for (size_t i = 0; i < n; i += 37) x[i] *= 20.0f;
  return x;
}

int64_t argmax(const float* v, int64_t n) {
  return std::max_element(v, v + n) - v;
}

// Every table rounds int16 blocks to the scalar table's bytes; each head kernel gives the scalar
// one's logits up to fp32 summation order and its bound; and every logit is within its bound of
// the exact dot of the dequantized row with the unrounded activations (in double; the bound's
// 1e-4 margin is far above fp32 rounding and far below the bound's own size).
TEST_F(OpsQgemm, HeadKernelsAgreeAndStayWithinTheirBound) {
  const int64_t n = 24, k = 512, nb = k / 32;
  const QKernels& ref = cpu::scalar_kernels();
  for (const Format& f : kHeadFormats) {
    Packed p = pack(f, random_floats(rng_, static_cast<size_t>(n * k), 0.05f), n, k);
    const int64_t wrb = cpu::row_bytes(f.dtype, k);
    for (int64_t m : {1, 3, 4, 6, 8, 11}) {  // 512-bit: groups of 8 and every tail
      const std::vector<float> x = head_activations(rng_, static_cast<size_t>(m * k));
      std::vector<BlockQ16A> xq_ref(static_cast<size_t>(m * nb));
      for (int64_t r = 0; r < m; ++r)
        ref.quantize_row16(x.data() + r * k, xq_ref.data() + r * nb, k);
      std::vector<float> out_ref(static_cast<size_t>(m * n)), bound_ref(out_ref.size());
      for (int64_t row = 0; row < n; ++row)  // row by row here, all n at once below
        ref.head_rows(f.dtype)(p.bytes.data() + row * wrb, wrb, 1, xq_ref.data(), nb, m, k,
                               out_ref.data() + row, n, bound_ref.data() + row, n);
      for (const QKernels* t : cpu::usable_kernels()) {
        std::vector<BlockQ16A> xq(xq_ref.size());
        for (int64_t r = 0; r < m; ++r) t->quantize_row16(x.data() + r * k, xq.data() + r * nb, k);
        ASSERT_EQ(std::memcmp(xq.data(), xq_ref.data(), xq.size() * sizeof(BlockQ16A)), 0)
            << t->name;
        std::vector<float> out(out_ref.size()), bound(out_ref.size());
        t->head_rows(f.dtype)(p.bytes.data(), wrb, n, xq.data(), nb, m, k, out.data(), n,
                              bound.data(), n);
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t row = 0; row < n; ++row) {
            const size_t i = static_cast<size_t>(r * n + row);
            const double exact = dot(p.deq.data() + row * k, x.data() + r * k, k);
            EXPECT_NEAR(out[i], out_ref[i], 1e-5 * (1.0 + std::fabs(out_ref[i])))
                << t->name << " " << f.name << " m " << m;
            EXPECT_NEAR(bound[i], bound_ref[i], 1e-5 * bound_ref[i]) << t->name << " " << f.name;
            EXPECT_GT(bound[i], 0.0f);
            EXPECT_LE(std::fabs(out[i] - exact), bound[i] * 1.0001 + 1e-4)
                << t->name << " " << f.name << " m " << m << " row " << row;
          }
        }
      }
    }
  }
}

// Rows a and b = a + one quantization step at element e, whose activation (next to a large one in
// its block) rounds to 0 in int16: the integer logits of a and b are equal, so a, the first, would
// win a plain argmax, while the fp32 ones differ by the step times the activation, b ahead. With
// the other rows small the pair decides the argmax of the first activation row: the head path
// must name b with b's fp32 logit, at batch 1 and within a batch of 5, on 1 and 2 threads. The
// fp32 reference is the same gemm with int8 activations off, one row at a time.
TEST_F(OpsQgemm, HeadGemmKeepsTheFp32ArgmaxOfNearTies) {
  const int64_t n = 300, k = 256, m = 5, e = 3;
  for (const Format& f : kHeadFormats) {
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<float> x = head_activations(rng_, static_cast<size_t>(m * k));
      std::vector<float> w = random_floats(rng_, static_cast<size_t>(n * k), 1e-4f);
      const int64_t a = 17 + trial, b = 201 + trial;
      for (int64_t r = 0; r < m; ++r) x[static_cast<size_t>(r * k)] = 1000.0f;  // block 0's step
      for (int64_t j = 0; j < k; ++j)  // a: 0.05 with the first row's signs over block 1, else 0
        w[static_cast<size_t>(a * k + j)] =
            j >= 32 && j < 64 ? (x[static_cast<size_t>(j)] > 0 ? 0.05f : -0.05f) : 0.0f;
      w[static_cast<size_t>(a * k + 1)] = 0.05f;  // block 0 needs a scale; element e stays 0
      Packed p = pack(f, w, n, k);
      const int64_t wrb = cpu::row_bytes(f.dtype, k);
      std::memcpy(p.bytes.data() + b * wrb, p.bytes.data() + a * wrb, static_cast<size_t>(wrb));
      auto* qb = reinterpret_cast<uint8_t*>(p.bytes.data() + b * wrb);
      const size_t qs = f.dtype == SABLE_DTYPE_Q4_1 ? 4 : 2;  // bytes before the quants
      qb[qs + e] =
          static_cast<uint8_t>(qb[qs + e] + 1);  // one step up (Q4: the low nibble, e < 16)
      std::vector<float> wa(static_cast<size_t>(k)), wb(wa.size());
      gguf::dequantize_row(f.ggml, p.bytes.data() + a * wrb, wa.data(), k);
      gguf::dequantize_row(f.ggml, p.bytes.data() + b * wrb, wb.data(), k);
      const float step = wb[e] - wa[e];
      ASSERT_NE(step, 0.0f) << f.name;
      for (int64_t r = 0; r < m; ++r)  // 0.4 of an int16 step (1000 / 32767), signed so b leads
        x[static_cast<size_t>(r * k + e)] = (step > 0 ? 0.4f : -0.4f) * 1000.0f / 32767.0f;
      std::vector<float> fp32(static_cast<size_t>(m * n));
      cpu::set_int8_activations(false);
      for (int64_t r = 0; r < m; ++r) {
        std::vector<float> xr(x.begin() + r * k, x.begin() + (r + 1) * k);
        const auto row = head_gemm(f.dtype, p.bytes.data(), n, k, xr, 1);
        std::copy(row.begin(), row.end(), fp32.begin() + r * n);
      }
      ASSERT_EQ(argmax(fp32.data(), n), b) << f.name << " trial " << trial;
      cpu::set_int8_activations(true);
      for (const int threads : {1, 2}) {
        cpu::set_threads(threads);
        const auto one = head_gemm(f.dtype, p.bytes.data(), n, k, x, 1);
        EXPECT_EQ(argmax(one.data(), n), b) << f.name << " trial " << trial;
        EXPECT_EQ(one[static_cast<size_t>(b)], fp32[static_cast<size_t>(b)]) << f.name;
        const auto batch = head_gemm(f.dtype, p.bytes.data(), n, k, x, m);
        for (int64_t r = 0; r < m; ++r) {
          const float* o = batch.data() + r * n;
          const int64_t best = argmax(fp32.data() + r * n, n);
          EXPECT_EQ(argmax(o, n), best) << f.name << " trial " << trial << " row " << r;
          EXPECT_EQ(o[best], fp32[static_cast<size_t>(r * n + best)]) << f.name << " row " << r;
          // The rest keep integer logits: block 0's step (1000 / 32767) leaves about 5e-4.
          EXPECT_LE(rel_l2(std::vector<float>(o, o + n),
                           std::vector<float>(fp32.begin() + r * n, fp32.begin() + (r + 1) * n)),
                    2e-3)
              << f.name << " row " << r;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sable::ops
