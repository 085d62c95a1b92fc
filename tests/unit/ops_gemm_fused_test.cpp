// gemm_fused (ABI 1.1) on the CPU table against a float64 reference written out by hand: the RMS
// norm prologue, bias, rope (both styles, partial), the gated epilogue and accumulate, and the
// argument checks (every bad field is INVALID_ARGUMENT with a message naming it).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "sable/cpp/tensor.h"

namespace sable::ops {
namespace {

using cpp::make_tensor;

struct Case {
  bool norm, bias, gated, accumulate;
  int32_t rope_cols, head_dim, rot, style;
  int64_t m, n, k;
};

double silu(double x) { return x / (1.0 + std::exp(-x)); }

// y = x'·wᵀ + b with x' = rms_norm(x)·(g + offset), then rope, gated silu, accumulate.
std::vector<double> reference(const Case& c, const std::vector<float>& x,
                              const std::vector<float>& w, const std::vector<float>& b,
                              const std::vector<float>& g, const std::vector<int32_t>& pos,
                              const std::vector<float>& cs, const std::vector<float>& out0) {
  const int64_t cols = c.gated ? c.n / 2 : c.n;
  std::vector<double> out(static_cast<size_t>(c.m * cols));
  for (int64_t m = 0; m < c.m; ++m) {
    std::vector<double> xr(x.begin() + m * c.k, x.begin() + (m + 1) * c.k);
    if (c.norm) {
      double ss = 0;
      for (double v : xr) ss += v * v;
      const double inv = 1.0 / std::sqrt(ss / c.k + 1e-6);
      for (int64_t i = 0; i < c.k; ++i) xr[i] = xr[i] * inv * g[i];
    }
    std::vector<double> y(c.n);
    for (int64_t j = 0; j < c.n; ++j) {
      double s = c.bias ? b[j] : 0.0;
      for (int64_t i = 0; i < c.k; ++i) s += xr[i] * w[j * c.k + i];
      y[j] = s;
    }
    for (int64_t h = 0; h * c.head_dim < c.rope_cols; ++h) {
      const int half = c.rot / 2;
      for (int p = 0; p < half; ++p) {
        const int64_t i0 = h * c.head_dim + (c.style == SABLE_ROPE_NEOX ? p : 2 * p);
        const int64_t i1 = h * c.head_dim + (c.style == SABLE_ROPE_NEOX ? p + half : 2 * p + 1);
        const double co = cs[pos[m] * c.rot + p], si = cs[pos[m] * c.rot + half + p];
        const double a = y[i0], bb = y[i1];
        y[i0] = a * co - bb * si;
        y[i1] = bb * co + a * si;
      }
    }
    for (int64_t j = 0; j < cols; ++j) {
      const double v = c.gated ? silu(y[j]) * y[j + cols] : y[j];
      out[m * cols + j] = v + (c.accumulate ? out0[m * cols + j] : 0.0);
    }
  }
  return out;
}

class GemmFusedCpu : public ::testing::TestWithParam<Case> {
 protected:
  std::vector<float> random(size_t n) {
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& e : v) e = d(rng_);
    return v;
  }
  std::mt19937 rng_{5};
};

TEST_P(GemmFusedCpu, MatchesFloat64Reference) {
  const Case c = GetParam();
  const int64_t cols = c.gated ? c.n / 2 : c.n, maxpos = 32;
  std::vector<float> x = random(c.m * c.k), w = random(c.n * c.k), b = random(c.n),
                     g = random(c.k), out = random(c.m * cols), cs = random(maxpos * 64);
  std::vector<int32_t> pos(c.m);
  for (int64_t i = 0; i < c.m; ++i) pos[i] = static_cast<int32_t>((i * 7 + 2) % maxpos);
  const std::vector<double> want = reference(c, x, w, b, g, pos, cs, out);

  Arena arena;
  SableOpsContext ctx;
  ctx.arena = &arena;
  SableTensor tx = make_tensor(x.data(), SABLE_DTYPE_F32, {c.m, c.k});
  SableTensor tw = make_tensor(w.data(), SABLE_DTYPE_F32, {c.n, c.k});
  SableTensor tb = make_tensor(b.data(), SABLE_DTYPE_F32, {c.n});
  SableTensor tg = make_tensor(g.data(), SABLE_DTYPE_F32, {c.k});
  SableTensor to = make_tensor(out.data(), SABLE_DTYPE_F32, {c.m, cols});
  SableTensor tp = make_tensor(pos.data(), SABLE_DTYPE_I32, {c.m});
  SableTensor tcs = make_tensor(cs.data(), SABLE_DTYPE_F32, {maxpos, std::max(c.rot, 1)});
  SableGemmFusion f{};
  f.struct_size = sizeof(f);
  f.norm_weight = c.norm ? &tg : nullptr;
  f.norm_eps = 1e-6f;
  f.gated = c.gated;
  f.act = SABLE_ACT_SILU;
  f.rope_cols = c.rope_cols;
  f.rope_head_dim = c.head_dim;
  f.rope_dim = c.rot;
  f.rope_style = c.style;
  f.positions = &tp;
  f.cos_sin = &tcs;
  f.accumulate = c.accumulate;
  // A forward calls gemm_fused several times per layer: its scratch must not outlive the call (it
  // once did, and a 32-layer 8B prefill kept 24 GB of dead intermediates, starving the KV pool).
  ASSERT_NE(arena.allocate(100), nullptr);  // the caller's live tensors stay where they are
  const size_t before = arena.used();
  ASSERT_EQ(cpu_ops()->gemm_fused(&ctx, &tx, &tw, c.bias ? &tb : nullptr, &f, &to), SABLE_OK)
      << ctx.last_error;
  EXPECT_EQ(arena.used(), before) << "gemm_fused kept scratch in the forward's arena";
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(out[i], want[i], 1e-4 * (1.0 + std::fabs(want[i]))) << "at " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Fusions, GemmFusedCpu,
    ::testing::Values(Case{false, false, false, false, 0, 0, 0, 0, 3, 20, 16},     // plain
                      Case{true, true, false, false, 0, 0, 0, 0, 4, 33, 40},       // norm + bias
                      Case{true, false, false, false, 48, 16, 16, SABLE_ROPE_NEOX, 2, 64, 24},
                      Case{false, true, false, false, 32, 16, 8, SABLE_ROPE_NEOX, 5, 40, 8},
                      Case{true, false, false, false, 32, 16, 12, SABLE_ROPE_INTERLEAVED, 3, 48,
                           16},
                      Case{true, true, true, false, 0, 0, 0, 0, 2, 30, 24},        // norm + gated
                      Case{false, false, true, true, 0, 0, 0, 0, 6, 18, 10},       // gated + acc
                      Case{false, true, false, true, 0, 0, 0, 0, 1, 12, 64}));     // residual add

TEST(GemmFusedCpuErrors, NameTheField) {
  Arena arena;
  SableOpsContext ctx;
  ctx.arena = &arena;
  std::vector<float> x(2 * 8), w(16 * 8), out(2 * 16), g(7);
  std::vector<int32_t> pos(2);
  SableTensor tx = make_tensor(x.data(), SABLE_DTYPE_F32, {2, 8});
  SableTensor tw = make_tensor(w.data(), SABLE_DTYPE_F32, {16, 8});
  SableTensor to = make_tensor(out.data(), SABLE_DTYPE_F32, {2, 16});
  SableTensor tg = make_tensor(g.data(), SABLE_DTYPE_F32, {7});
  SableTensor tp = make_tensor(pos.data(), SABLE_DTYPE_I32, {2});
  auto expect = [&](const SableGemmFusion& f, const char* needle) {
    EXPECT_EQ(cpu_ops()->gemm_fused(&ctx, &tx, &tw, nullptr, &f, &to), SABLE_ERR_INVALID_ARGUMENT);
    ASSERT_NE(ctx.last_error, nullptr);
    EXPECT_NE(std::string(ctx.last_error).find(needle), std::string::npos) << ctx.last_error;
  };
  SableGemmFusion f{};
  f.struct_size = sizeof(f);
  f.norm_weight = &tg;  // K is 8
  expect(f, "norm_weight");
  f = SableGemmFusion{};
  f.struct_size = sizeof(f);
  f.gated = 1;  // out would have to be [2, 8]
  expect(f, "out must be");
  f.act = 99;
  expect(f, "activation");
  f = SableGemmFusion{};
  f.struct_size = sizeof(f);
  f.rope_cols = 16;
  f.rope_head_dim = 8;
  f.rope_dim = 8;
  f.positions = &tp;  // no cos_sin
  expect(f, "cos_sin");
  f.rope_dim = 9;
  expect(f, "rope_dim");
  // A NULL fusion is a plain GEMM.
  EXPECT_EQ(cpu_ops()->gemm_fused(&ctx, &tx, &tw, nullptr, nullptr, &to), SABLE_OK);
}

}  // namespace
}  // namespace sable::ops
