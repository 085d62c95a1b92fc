// mlp_fused on CUDA: its one kernel (core/ops/cuda/mlp_kernel.cu) against the CPU table's composed
// form in fp32, for the MLP shapes of small models and the edges of the kernel's partition (CTAs
// with no rows or units), 1 to 4 rows, out == x; the kernel's bits the same on every launch, back
// to back and in graph replays (its grid barrier resets itself); the composed form for what the
// kernel does not take (biases, large MLPs, five rows).
#include <algorithm>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cuda/cuda_ops.h"
#include "core/ops/cuda/kernels.h"
#include "core/ops/weight_ranges.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

// A tensor's fp32 host copy (bf16-representable values) and its bf16 device copy.
struct Buf {
  std::vector<float> host;
  std::vector<int64_t> shape;
  DeviceBuffer dev;
  SableTensor view(bool gpu) {
    return cpp::make_tensor(gpu ? dev.get() : host.data(), gpu ? SABLE_DTYPE_BF16 : SABLE_DTYPE_F32,
                            std::span<const int64_t>(shape),
                            gpu ? SABLE_DEVICE_CUDA : SABLE_DEVICE_CPU);
  }
  std::vector<uint16_t> bits() const { return dev.download<uint16_t>(host.size()); }
  std::vector<float> fetch() const {
    std::vector<float> f;
    for (uint16_t h : bits()) f.push_back(from_bf16(h));
    return f;
  }
  void upload() {
    std::vector<uint16_t> h(host.size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = to_bf16(host[i]);
    dev.upload(h);
  }
};

// One MLP: x [m, H], gate|up [2I, H], down [H, I], norm weight [H], out [m, H], biases.
struct Mlp {
  Buf x, gu, down, g, out, gub, downb;
  SableGemmFusion fusion(SableTensor* norm) const {
    SableGemmFusion f{};
    f.struct_size = sizeof(f);
    f.gated = 1;
    f.act = SABLE_ACT_SILU;
    f.norm_weight = norm;
    f.norm_eps = 1e-6f;
    return f;
  }
};

class CudaMlpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
    cpu_ctx_.arena = &cpu_arena_;
    gpu_arena_ = std::make_unique<ops::Arena>(std::make_unique<ops::CudaBacking>(), 64 << 20);
    gpu_ctx_.device_type = SABLE_DEVICE_CUDA;
    gpu_ctx_.arena = gpu_arena_.get();
    act_ = DeviceBuffer(4 * 8192 * 2);
  }
  Buf make(std::vector<int64_t> shape, float scale, float offset = 0.0f) {
    Buf b;
    b.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    for (int64_t i = 0; i < n; ++i)
      b.host.push_back(from_bf16(to_bf16(offset + nd_(rng_) * scale)));
    b.dev = DeviceBuffer(static_cast<size_t>(n) * 2);
    b.upload();
    return b;
  }
  Mlp make_mlp(int64_t m, int64_t h, int64_t i) {
    return Mlp{make({m, h}, 1.0f),    make({2 * i, h}, 0.05f), make({h, i}, 0.05f),
               make({h}, 0.1f, 1.0f), make({m, h}, 1.0f),      make({2 * i}, 0.1f),
               make({h}, 0.1f)};
  }
  // The CPU table's result into p.out.host; the GPU op's into p.out.dev (out == x when in_place).
  void run_both(Mlp& p, bool bias, bool in_place) {
    SableTensor xc = p.x.view(false), guc = p.gu.view(false), dc = p.down.view(false);
    SableTensor gc = p.g.view(false), oc = p.out.view(false), gbc = p.gub.view(false);
    SableTensor dbc = p.downb.view(false);
    const SableGemmFusion fc = p.fusion(&gc);
    ASSERT_EQ(c_->mlp_fused(&cpu_ctx_, &xc, &guc, bias ? &gbc : nullptr, &fc, &dc,
                            bias ? &dbc : nullptr, in_place ? &xc : &oc),
              SABLE_OK)
        << cpu_ctx_.last_error;
    SableTensor xg = p.x.view(true), gug = p.gu.view(true), dg = p.down.view(true);
    SableTensor gg = p.g.view(true), og = p.out.view(true), gbg = p.gub.view(true);
    SableTensor dbg = p.downb.view(true);
    const SableGemmFusion fg = p.fusion(&gg);
    ASSERT_EQ(g_->mlp_fused(&gpu_ctx_, &xg, &gug, bias ? &gbg : nullptr, &fg, &dg,
                            bias ? &dbg : nullptr, in_place ? &xg : &og),
              SABLE_OK)
        << gpu_ctx_.last_error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  // The kernel itself (not the op, which may fall back) into p.out.dev; false: it did not launch.
  bool run_kernel(Mlp& p, cudaStream_t s = nullptr, int32_t grid = 0) {
    ops::cuda::MlpFusedArgs a;
    a.x = p.x.dev.get();
    a.ldx = p.x.shape[1];
    a.norm_w = p.g.dev.get();
    a.eps = 1e-6f;
    a.w_gate_up = p.gu.dev.get();
    a.w_down = p.down.dev.get();
    a.act = act_.get();
    a.out = p.out.dev.get();
    a.ldo = p.x.shape[1];
    a.m = p.x.shape[0];
    a.hidden = p.x.shape[1];
    a.inter = p.down.shape[1];
    a.act_kind = SABLE_ACT_SILU;
    a.grid = grid;
    return ops::cuda::mlp_fused(a, s);
  }
  const SableOps* c_ = ops::cpu_ops();
  const SableOps* g_ = ops::cuda_ops();
  ops::Arena cpu_arena_;
  std::unique_ptr<ops::Arena> gpu_arena_;
  SableOpsContext cpu_ctx_, gpu_ctx_;
  DeviceBuffer act_;  // the kernel's scratch a [m, I] for run_kernel
  std::mt19937 rng_{11};
  std::normal_distribution<float> nd_{0.0f, 1.0f};
};

struct Shape {
  const char* name;
  int64_t hidden, inter;
};
// Qwen2.5-0.5B, SmolLM2-135M, Qwen3-0.6B; H and I below the grid (CTAs with nothing to do), and
// I not a multiple of the grid.
const Shape kShapes[] = {{"qwen2.5-0.5b", 896, 4864},
                         {"smollm2-135m", 576, 1536},
                         {"qwen3-0.6b", 1024, 3072},
                         {"tiny", 64, 96},
                         {"uneven", 200, 1000}};

TEST_F(CudaMlpTest, OneKernelMatchesCpu) {
  for (const Shape& s : kShapes) {
    for (int64_t m : {1, 2, 3, 4}) {
      SCOPED_TRACE(testing::Message() << s.name << " m=" << m);
      ASSERT_TRUE(ops::cuda::mlp_fused_fits(m, s.hidden, s.inter));
      Mlp p = make_mlp(m, s.hidden, s.inter);
      const std::vector<uint16_t> out0 = p.out.bits();
      run_both(p, /*bias=*/false, /*in_place=*/false);
      EXPECT_LT(rel_l2(p.out.fetch(), p.out.host), 1e-2);
      // The op took the kernel: the kernel alone on the same residual gives the same bits.
      const std::vector<uint16_t> op_bits = p.out.bits();
      p.out.dev.upload(out0);
      ASSERT_TRUE(run_kernel(p));
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(p.out.bits(), op_bits);
    }
  }
}

// The decoder's call: the residual stream is both x and out.
TEST_F(CudaMlpTest, OutMayBeX) {
  for (int64_t m : {1, 4}) {
    Mlp p = make_mlp(m, 896, 4864);
    run_both(p, false, /*in_place=*/true);
    EXPECT_LT(rel_l2(p.x.fetch(), p.x.host), 1e-2) << "m=" << m;
  }
}

// 100 launches back to back, each on the residual the last one wrote (the weights registered as
// checkpoint memory, so each kernel's copies start under PDL while the last one runs; its claim
// counters must be reset by then), against the same 100 steps replayed from a captured graph.
TEST_F(CudaMlpTest, CountersResetAcrossLaunchesAndGraphReplays) {
  Mlp p = make_mlp(2, 896, 4864);
  const size_t gu_bytes = p.gu.host.size() * 2, down_bytes = p.down.host.size() * 2;
  ops::register_weight_range(p.gu.dev.get(), gu_bytes);
  ops::register_weight_range(p.down.dev.get(), down_bytes);
  const std::vector<uint16_t> x0 = p.x.bits();
  auto step = [&](cudaStream_t s) {
    gpu_ctx_.stream = s;
    SableTensor xg = p.x.view(true), gug = p.gu.view(true), dg = p.down.view(true);
    SableTensor gg = p.g.view(true);
    const SableGemmFusion f = p.fusion(&gg);
    return g_->mlp_fused(&gpu_ctx_, &xg, &gug, nullptr, &f, &dg, nullptr, &xg);
  };
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(step(stream), SABLE_OK) << gpu_ctx_.last_error;
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  const std::vector<uint16_t> eager = p.x.bits();
  EXPECT_NE(eager, x0);

  cudaGraph_t graph;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(step(stream), SABLE_OK) << gpu_ctx_.last_error;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int replay = 0; replay < 3; ++replay) {
    p.x.dev.upload(x0);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(p.x.bits(), eager) << "replay " << replay;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  gpu_ctx_.stream = nullptr;
  ops::forget_weight_ranges(p.gu.dev.get(), gu_bytes);
  ops::forget_weight_ranges(p.down.dev.get(), down_bytes);
}

// More chunks than CTAs that can be resident at once (4 a SM; ~3 fit): the first CTAs claim and
// compute the chunks of those that cannot start, and the late ones find nothing left, instead of
// all waiting for CTAs that never run.
TEST_F(CudaMlpTest, NoCtaWaitsForOneThatCannotStart) {
  int dev = 0, sms = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  for (int64_t m : {1, 3}) {
    SCOPED_TRACE(testing::Message() << "m=" << m);
    Mlp p = make_mlp(m, 896, 4864);
    const std::vector<uint16_t> out0 = p.out.bits();
    run_both(p, false, false);  // the CPU's result into p.out.host
    p.out.dev.upload(out0);
    ASSERT_TRUE(run_kernel(p, nullptr, 4 * sms));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LT(rel_l2(p.out.fetch(), p.out.host), 1e-2);
  }
}

// What the kernel does not take runs as the two gemm_fused calls: biases, an MLP larger than the
// SMs' shared memory (Llama-3.2-1B's), more than four rows.
TEST_F(CudaMlpTest, ComposedFormForTheRest) {
  {
    SCOPED_TRACE("bias");
    Mlp p = make_mlp(1, 896, 4864);
    run_both(p, /*bias=*/true, false);
    EXPECT_LT(rel_l2(p.out.fetch(), p.out.host), 1e-2);
  }
  {
    SCOPED_TRACE("1B");
    EXPECT_FALSE(ops::cuda::mlp_fused_fits(1, 2048, 8192));
    Mlp p = make_mlp(1, 2048, 8192);
    run_both(p, false, false);
    EXPECT_LT(rel_l2(p.out.fetch(), p.out.host), 1e-2);
  }
  {
    SCOPED_TRACE("m=5");
    EXPECT_FALSE(ops::cuda::mlp_fused_fits(5, 896, 4864));
    Mlp p = make_mlp(5, 896, 4864);
    run_both(p, false, false);
    EXPECT_LT(rel_l2(p.out.fetch(), p.out.host), 1e-2);
  }
  // A bad call is an error naming the problem.
  Mlp p = make_mlp(1, 64, 96);
  SableTensor xg = p.x.view(true), gug = p.gu.view(true), dg = p.down.view(true);
  SableTensor og = p.out.view(true);
  SableGemmFusion f = p.fusion(nullptr);
  f.gated = 0;
  EXPECT_EQ(g_->mlp_fused(&gpu_ctx_, &xg, &gug, nullptr, &f, &dg, nullptr, &og),
            SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(gpu_ctx_.last_error).find("gated"), std::string::npos);
}

}  // namespace
}  // namespace sable::gputest
