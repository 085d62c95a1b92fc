// GEMM tuning (core/ops/cuda/gemm.cpp; on unless SABLE_GEMM_TUNE=0): a small-batch shape's first
// eager call times cuBLASLt's candidates on its own operands. Pinned here: the timing runs write
// only their scratch output, so an accumulating call (out += x · wᵀ) still adds exactly once; every
// call then uses the one chosen algorithm (a second call gives the same bits), timed once; a batch
// of one row (the skinny GEMV) and of more rows than the tuner takes still answer, untimed. Part of
// cuda_ops_test.
#include <random>
#include <vector>

#include "core/ops/cuda/gemm.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

std::vector<float> bf16_values(size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = from_bf16(to_bf16(nd(rng) * scale));
  return v;
}

TEST(CudaGemmTune, AccumulatesOnceAndKeepsItsChoice) {
  SABLE_REQUIRE_GPU();
  const int64_t n = 320, k = 1024;
  std::mt19937 rng(3);
  for (int64_t m : {1, 64, 600}) {
    SCOPED_TRACE(testing::Message() << "m=" << m);
    const std::vector<float> x = bf16_values(static_cast<size_t>(m * k), 1.0f, rng);
    const std::vector<float> w = bf16_values(static_cast<size_t>(n * k), 0.05f, rng);
    const std::vector<float> old = bf16_values(static_cast<size_t>(m * n), 1.0f, rng);
    std::vector<float> want(old);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double s = 0.0;
        for (int64_t i = 0; i < k; ++i) s += double(x[r * k + i]) * w[c * k + i];
        want[r * n + c] += static_cast<float>(s);
      }
    DeviceBuffer xd(x.size() * 2), wd(w.size() * 2), od(old.size() * 4);
    upload_floats(xd, x, SABLE_DTYPE_BF16);
    upload_floats(wd, w, SABLE_DTYPE_BF16);
    std::vector<float> first, second;
    const ops::cuda::GemmTuneCounts before = ops::cuda::gemm_tune_counts();
    with_env("SABLE_GEMM_TUNE", "1", [&] {
      ops::cuda::Gemm gemm;
      for (auto* got : {&first, &second}) {
        upload_floats(od, old, SABLE_DTYPE_F32);
        std::string error;
        ASSERT_TRUE(gemm.run(xd.get(), k, SABLE_DTYPE_BF16, wd.get(), nullptr, od.get(),
                             SABLE_DTYPE_F32, m, n, k, nullptr, &error, /*accumulate=*/true))
            << error;
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        *got = download_floats(od, old.size(), SABLE_DTYPE_F32);
      }
    });
    if (HasFatalFailure()) return;
    // 64 rows: one shape timed (the first call), none after; 1 row (the skinny GEMV) and 600 (past
    // the tuner's range): none.
    const ops::cuda::GemmTuneCounts after = ops::cuda::gemm_tune_counts();
    EXPECT_EQ(after.timed - before.timed, m == 64 ? 1 : 0);
    EXPECT_EQ(after.untimed, before.untimed);
    ASSERT_EQ(first.size(), want.size());
    EXPECT_LT(rel_l2(first, want), 1e-3);
    for (size_t e = 0; e < first.size(); ++e) ASSERT_EQ(first[e], second[e]) << "element " << e;
  }
}

}  // namespace
}  // namespace sable::gputest
