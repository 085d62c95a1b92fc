// The CUDA encoder attention (ops attention_bidirectional) against the CPU ops table's on the same
// bf16-representable inputs: the tensor-core kernel (bf16, head dims 64 / 80 / 128) and the plain
// fallback (other head dims), for one sequence over many 64-row tiles, vision-style windows that
// straddle the tiles, single-token sequences, and GQA (2 query heads per KV head). Q, K and V are
// column slices of one fused [T, (Hq + 2 Hk) D] buffer, as the models pass them.
#include <array>
#include <random>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cuda/cuda_ops.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

constexpr int64_t kHq = 4, kHk = 2;

// Q [t, Hq, d], K and V [t, Hk, d]: column slices of the fused [t, (Hq + 2 Hk) d] buffer at `base`.
std::array<SableTensor, 3> qkv_views(void* base, int32_t dtype, int32_t device, int64_t t,
                                     int64_t d) {
  const int64_t width = (kHq + 2 * kHk) * d;
  const size_t elem = static_cast<size_t>(sable_dtype_size(dtype));
  auto view = [&](int64_t col, int64_t heads) {
    SableTensor v =
        cpp::make_tensor(static_cast<char*>(base) + col * elem, dtype, {t, heads, d}, device);
    v.strides[0] = width;
    v.strides[1] = d;
    v.strides[2] = 1;
    return v;
  };
  return {view(0, kHq), view(kHq * d, kHk), view((kHq + kHk) * d, kHk)};
}

// Runs both tables over sequences of the given lengths; returns the relative L2 error of CUDA's
// output against the CPU's.
double run_case(int64_t d, const std::vector<int32_t>& lens) {
  std::vector<int32_t> positions;
  for (int32_t n : lens)
    for (int32_t j = 0; j < n; ++j) positions.push_back(j);
  const auto t = static_cast<int64_t>(positions.size());
  const int64_t width = (kHq + 2 * kHk) * d;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> fused(static_cast<size_t>(t * width));
  std::vector<uint16_t> fused_bf16(fused.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    fused_bf16[i] = to_bf16(nd(rng));
    fused[i] = from_bf16(fused_bf16[i]);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  std::vector<float> want(static_cast<size_t>(t * kHq * d));
  {
    ops::Arena arena;
    SableOpsContext ctx;
    ctx.arena = &arena;
    auto [q, k, v] = qkv_views(fused.data(), SABLE_DTYPE_F32, SABLE_DEVICE_CPU, t, d);
    SableTensor o = cpp::make_tensor(want.data(), SABLE_DTYPE_F32, {t, kHq, d});
    SableTensor pos = cpp::make_tensor(positions.data(), SABLE_DTYPE_I32, {t});
    EXPECT_EQ(ops::cpu_ops()->attention_bidirectional(&ctx, &q, &k, &v, &pos, scale, &o), SABLE_OK);
  }

  DeviceBuffer dev_fused(fused_bf16.size() * 2), dev_pos(positions.size() * 4),
      dev_out(want.size() * 2);
  dev_fused.upload(fused_bf16);
  dev_pos.upload(positions);
  ops::Arena arena(std::make_unique<ops::CudaBacking>(), 16 << 20);
  SableOpsContext ctx;
  ctx.device_type = SABLE_DEVICE_CUDA;
  ctx.arena = &arena;
  auto [q, k, v] = qkv_views(dev_fused.get(), SABLE_DTYPE_BF16, SABLE_DEVICE_CUDA, t, d);
  SableTensor o = cuda_tensor(dev_out.get(), SABLE_DTYPE_BF16, {t, kHq, d});
  SableTensor pos = cuda_tensor(dev_pos.get(), SABLE_DTYPE_I32, {t});
  EXPECT_EQ(ops::cuda_ops()->attention_bidirectional(&ctx, &q, &k, &v, &pos, scale, &o), SABLE_OK);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> got_bf16 = dev_out.download<uint16_t>(want.size());
  std::vector<float> got(got_bf16.size());
  for (size_t i = 0; i < got.size(); ++i) got[i] = from_bf16(got_bf16[i]);
  return rel_l2(got, want);
}

class CudaEncoderAttention : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaEncoderAttention, OneSequenceOverManyTiles) {
  EXPECT_LT(run_case(GetParam(), {300}), 1e-2);
}

TEST_P(CudaEncoderAttention, WindowsStraddlingTheTiles) {
  // Vision-tower windows of uneven sizes (edge windows are smaller), a long full-attention run.
  EXPECT_LT(run_case(GetParam(), {64, 49, 100, 7, 1, 64, 130, 40}), 1e-2);
}

TEST_P(CudaEncoderAttention, TinySequences) {
  EXPECT_LT(run_case(GetParam(), {1, 1, 2, 3, 1, 70, 1}), 1e-2);
}

TEST_P(CudaEncoderAttention, LongImage) {
  EXPECT_LT(run_case(GetParam(), {1200, 5}), 1e-2);
}

// 64, 80 and 128: the tensor-core kernel (80: the Qwen2.5-VL vision tower); 32: the plain kernel.
INSTANTIATE_TEST_SUITE_P(HeadDims, CudaEncoderAttention, ::testing::Values(64, 80, 128, 32));

}  // namespace
}  // namespace sable::gputest
