// Encoder attention of the CPU ops table (attention_bidirectional, ABI 1.2) against a float64
// reference written out here: two sequences in one batch (the runs of positions 0.. in
// `positions`), GQA (4 query heads over 2 key heads), q/k/v as column views of one fused
// projection. Every token must see its whole sequence (before and after it) and nothing of the
// other. Also the tanh activation the classifier heads use, and the errors.
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

constexpr int64_t kHq = 4, kHk = 2, kD = 8, kWidth = (kHq + 2 * kHk) * kD;

// A [T, heads, D] view of columns [col, col + heads * D) of the fused [T, kWidth] buffer.
SableTensor heads_view(std::vector<float>& fused, int64_t t, int64_t col, int64_t heads) {
  SableTensor v = cpp::make_tensor(fused.data() + col, SABLE_DTYPE_F32, {t, heads, kD});
  v.strides[0] = kWidth;
  v.strides[1] = kD;
  v.strides[2] = 1;
  return v;
}

TEST(OpsAttentionBidirectional, EveryTokenSeesItsWholeSequenceOnly) {
  const std::vector<int32_t> lens = {3, 5};
  std::vector<int32_t> positions;
  for (int32_t n : lens)
    for (int32_t j = 0; j < n; ++j) positions.push_back(j);
  const auto t = static_cast<int64_t>(positions.size());
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> fused(static_cast<size_t>(t * kWidth));
  for (float& x : fused) x = d(rng);
  std::vector<float> out(static_cast<size_t>(t * kHq * kD), 0.0f);
  SableTensor q = heads_view(fused, t, 0, kHq), k = heads_view(fused, t, kHq * kD, kHk),
              v = heads_view(fused, t, (kHq + kHk) * kD, kHk);
  SableTensor o = cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {t, kHq, kD});
  SableTensor pos = cpp::make_tensor(positions.data(), SABLE_DTYPE_I32, {t});
  Arena arena;
  SableOpsContext ctx;
  ctx.arena = &arena;
  const SableOps* ops = cpu_ops();
  ASSERT_TRUE(SABLE_HAS(ops, attention_bidirectional));
  const float scale = 0.3f;
  ASSERT_EQ(ops->attention_bidirectional(&ctx, &q, &k, &v, &pos, scale, &o), SABLE_OK);

  auto at = [&](int64_t tok, int64_t col) { return static_cast<double>(fused[tok * kWidth + col]); };
  int64_t begin = 0;
  for (int32_t n : lens) {
    for (int64_t i = begin; i < begin + n; ++i) {
      for (int64_t h = 0; h < kHq; ++h) {
        const int64_t g = h / (kHq / kHk);
        std::vector<double> w;
        double mx = -1e300;
        for (int64_t j = begin; j < begin + n; ++j) {
          double s = 0;
          for (int64_t e = 0; e < kD; ++e) s += at(i, h * kD + e) * at(j, (kHq + g) * kD + e);
          w.push_back(s * scale);
          mx = std::max(mx, w.back());
        }
        double sum = 0;
        for (double& x : w) sum += (x = std::exp(x - mx));
        for (int64_t e = 0; e < kD; ++e) {
          double ref = 0;
          for (int64_t j = 0; j < n; ++j)
            ref += w[static_cast<size_t>(j)] / sum * at(begin + j, (kHq + kHk + g) * kD + e);
          EXPECT_NEAR(out[static_cast<size_t>((i * kHq + h) * kD + e)], ref, 1e-5)
              << "token " << i << " head " << h << " dim " << e;
        }
      }
    }
    begin += n;
  }

  // Positions that do not restart at 0 for a new sequence are refused.
  std::vector<int32_t> bad = positions;
  bad[3] = 2;
  SableTensor bad_pos = cpp::make_tensor(bad.data(), SABLE_DTYPE_I32, {t});
  EXPECT_EQ(ops->attention_bidirectional(&ctx, &q, &k, &v, &bad_pos, scale, &o),
            SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ctx.last_error).find("positions"), std::string::npos) << ctx.last_error;
}

TEST(OpsAttentionBidirectional, TanhActivation) {
  std::vector<float> x = {-3.0f, -0.5f, 0.0f, 0.25f, 4.0f, 1.0f};
  std::vector<float> y(x.size());
  SableTensor xt = cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {2, 3});
  SableTensor yt = cpp::make_tensor(y.data(), SABLE_DTYPE_F32, {2, 3});
  Arena arena;
  SableOpsContext ctx;
  ctx.arena = &arena;
  ASSERT_EQ(cpu_ops()->activation(&ctx, SABLE_ACT_TANH, &xt, &yt), SABLE_OK);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], std::tanh(x[i]), 1e-6);
  // tanh is not a gated activation.
  std::vector<float> g(4), o(2);
  SableTensor gt = cpp::make_tensor(g.data(), SABLE_DTYPE_F32, {1, 4});
  SableTensor ot = cpp::make_tensor(o.data(), SABLE_DTYPE_F32, {1, 2});
  EXPECT_EQ(cpu_ops()->act_mul(&ctx, SABLE_ACT_TANH, &gt, &ot), SABLE_ERR_INVALID_ARGUMENT);
}

}  // namespace
}  // namespace sable::ops
