// mlp_fused (ABI 1.8) on the CPU table: against a float64 reference of the gated MLP with its norm
// and residual add (with and without biases, out separate from x and out == x), its scratch handed
// back, and the argument checks (each bad argument INVALID_ARGUMENT with a message naming it).
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

double silu(double x) {
  return x / (1.0 + std::exp(-x));
}

struct Mlp {
  int64_t m, hidden, inter;
  std::vector<float> x, gu, gu_bias, down, down_bias, g, out;
};

Mlp random_mlp(int64_t m, int64_t h, int64_t i, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  auto v = [&](int64_t n) {
    std::vector<float> r(static_cast<size_t>(n));
    for (float& e : r) e = d(rng);
    return r;
  };
  return Mlp{m, h, i, v(m * h), v(2 * i * h), v(2 * i), v(h * i), v(h), v(h), v(m * h)};
}

// out + down(silu(gate(x')) * up(x')) with x' = rms_norm(x) * g.
std::vector<double> reference(const Mlp& p, bool bias, const std::vector<float>& out0) {
  std::vector<double> out(out0.begin(), out0.end());
  for (int64_t m = 0; m < p.m; ++m) {
    std::vector<double> xr(p.x.begin() + m * p.hidden, p.x.begin() + (m + 1) * p.hidden);
    double ss = 0;
    for (double v : xr) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / p.hidden + 1e-6);
    for (int64_t k = 0; k < p.hidden; ++k) xr[k] = xr[k] * inv * p.g[k];
    std::vector<double> a(p.inter);
    for (int64_t j = 0; j < p.inter; ++j) {
      double gate = bias ? p.gu_bias[j] : 0.0, up = bias ? p.gu_bias[p.inter + j] : 0.0;
      for (int64_t k = 0; k < p.hidden; ++k) {
        gate += xr[k] * p.gu[j * p.hidden + k];
        up += xr[k] * p.gu[(p.inter + j) * p.hidden + k];
      }
      a[j] = silu(gate) * up;
    }
    for (int64_t r = 0; r < p.hidden; ++r) {
      double s = bias ? p.down_bias[r] : 0.0;
      for (int64_t j = 0; j < p.inter; ++j) s += a[j] * p.down[r * p.inter + j];
      out[m * p.hidden + r] += s;
    }
  }
  return out;
}

struct Call {
  Arena arena;
  SableOpsContext ctx;
  SableTensor x, gu, gub, down, downb, g, out;
  SableGemmFusion f{};
  explicit Call(Mlp& p) {
    ctx.arena = &arena;
    x = make_tensor(p.x.data(), SABLE_DTYPE_F32, {p.m, p.hidden});
    gu = make_tensor(p.gu.data(), SABLE_DTYPE_F32, {2 * p.inter, p.hidden});
    gub = make_tensor(p.gu_bias.data(), SABLE_DTYPE_F32, {2 * p.inter});
    down = make_tensor(p.down.data(), SABLE_DTYPE_F32, {p.hidden, p.inter});
    downb = make_tensor(p.down_bias.data(), SABLE_DTYPE_F32, {p.hidden});
    g = make_tensor(p.g.data(), SABLE_DTYPE_F32, {p.hidden});
    out = make_tensor(p.out.data(), SABLE_DTYPE_F32, {p.m, p.hidden});
    f.struct_size = sizeof(f);
    f.gated = 1;
    f.act = SABLE_ACT_SILU;
    f.norm_weight = &g;
    f.norm_eps = 1e-6f;
  }
  SableStatus run(bool bias, SableTensor* o) {
    return cpu_ops()->mlp_fused(&ctx, &x, &gu, bias ? &gub : nullptr, &f, &down,
                                bias ? &downb : nullptr, o);
  }
};

TEST(MlpFusedCpu, MatchesFloat64Reference) {
  for (const bool bias : {false, true}) {
    Mlp p = random_mlp(3, 24, 40, bias ? 2 : 1);
    const std::vector<double> want = reference(p, bias, p.out);
    Call c(p);
    ASSERT_NE(c.arena.allocate(100), nullptr);  // the caller's live tensors stay where they are
    const size_t before = c.arena.used();
    ASSERT_EQ(c.run(bias, &c.out), SABLE_OK) << c.ctx.last_error;
    EXPECT_EQ(c.arena.used(), before) << "mlp_fused kept its activation in the forward's arena";
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(p.out[i], want[i], 1e-4 * (1.0 + std::fabs(want[i])))
          << "bias " << bias << " at " << i;
  }
}

// The decoder passes the residual stream as both x and out: x must be read whole first.
TEST(MlpFusedCpu, OutMayBeX) {
  Mlp p = random_mlp(2, 16, 24, 3);
  const std::vector<double> want = reference(p, false, p.x);
  Call c(p);
  ASSERT_EQ(c.run(false, &c.x), SABLE_OK) << c.ctx.last_error;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(p.x[i], want[i], 1e-4 * (1.0 + std::fabs(want[i]))) << "at " << i;
}

TEST(MlpFusedCpuErrors, NameTheProblem) {
  Mlp p = random_mlp(2, 16, 24, 4);
  auto expect = [](Call& c, SableTensor* out, const char* needle) {
    EXPECT_EQ(c.run(false, out), SABLE_ERR_INVALID_ARGUMENT);
    ASSERT_NE(c.ctx.last_error, nullptr);
    EXPECT_NE(std::string(c.ctx.last_error).find(needle), std::string::npos) << c.ctx.last_error;
  };
  {
    Call c(p);
    c.f.gated = 0;
    expect(c, &c.out, "gated");
  }
  {
    Call c(p);
    c.f.accumulate = 1;
    expect(c, &c.out, "accumulate");
  }
  {
    Call c(p);
    c.down = make_tensor(p.down.data(), SABLE_DTYPE_F32, {16, 20});  // I 20 against gate|up's 24
    expect(c, &c.out, "w_gate_up");
  }
  {
    Call c(p);
    c.x = make_tensor(p.x.data(), SABLE_DTYPE_F32, {4, 8});
    expect(c, &c.out, "columns");
  }
  {
    Call c(p);
    c.out = make_tensor(p.x.data() + 1, SABLE_DTYPE_F32, {2, 16});  // overlaps x, is not x
    expect(c, &c.out, "overlaps");
  }
  {
    Call c(p);
    c.g = make_tensor(p.g.data(), SABLE_DTYPE_F32, {8});
    expect(c, &c.out, "norm_weight");
  }
}

}  // namespace
}  // namespace sable::ops
