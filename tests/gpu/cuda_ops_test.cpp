// Every CUDA op against the CPU ops table on the same random inputs: CUDA computes in bf16 (or
// F32 where the op outputs it), the CPU in fp32, so results agree to bf16 tolerance.
#include "core/ops/cuda/cuda_ops.h"

#include <algorithm>
#include <functional>
#include <random>
#include <string>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cuda/kernels.h"
#include "core/ops/expert_recorder.h"
#include "core/ops/weight_ranges.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

// One host and one device copy of a tensor, filled with bf16-representable values.
struct Pair {
  std::vector<float> host;
  std::vector<int64_t> shape;
  int32_t dtype;  // of the device copy
  DeviceBuffer dev;
  SableTensor cpu() { return view(host.data(), SABLE_DTYPE_F32, SABLE_DEVICE_CPU); }
  SableTensor gpu() { return view(dev.get(), dtype, SABLE_DEVICE_CUDA); }
  SableTensor view(void* p, int32_t dt, int32_t device) {
    SableTensor t{};
    t.struct_size = sizeof(t);
    t.dtype = dt;
    t.device_type = device;
    t.ndim = static_cast<int32_t>(shape.size());
    int64_t s = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      t.shape[i] = shape[i];
      t.strides[i] = s;
      s *= shape[i];
    }
    t.data = p;
    return t;
  }
  std::vector<float> fetch() { return download_floats(dev, host.size(), dtype); }
};

class CudaOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
    cpu_ctx_.arena = &cpu_arena_;
    gpu_arena_ = std::make_unique<ops::Arena>(std::make_unique<ops::CudaBacking>(), 64 << 20);
    gpu_ctx_.device_type = SABLE_DEVICE_CUDA;
    gpu_ctx_.arena = gpu_arena_.get();
  }
  Pair make(std::vector<int64_t> shape, float scale = 1.0f, int32_t dtype = SABLE_DTYPE_BF16) {
    Pair p;
    p.shape = shape;
    p.dtype = dtype;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    p.host.resize(n);
    for (auto& x : p.host) x = from_bf16(to_bf16(nd_(rng_) * scale));
    p.dev = DeviceBuffer(n * sable_dtype_size(dtype));
    upload_floats(p.dev, p.host, dtype);
    return p;
  }
  void expect_close(Pair& p, double tol = 1e-2) {
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_LT(rel_l2(p.fetch(), p.host), tol);
  }
  const SableOps* c_ = ops::cpu_ops();
  const SableOps* g_ = ops::cuda_ops();
  ops::Arena cpu_arena_;
  std::unique_ptr<ops::Arena> gpu_arena_;
  SableOpsContext cpu_ctx_, gpu_ctx_;
  std::mt19937 rng_{7};
  std::normal_distribution<float> nd_{0.0f, 1.0f};
};

// K 896 and 4864 (Qwen2.5-0.5B's hidden and intermediate sizes): rows of 3.5 and 4.75 batches of
// loads a lane, so the skinny GEMM's last batch is partial; their weights registered, so its first
// batch goes out before the wait.
TEST_F(CudaOpsTest, GemmBf16AndF32Out) {
  for (int64_t k : {96, 896, 4864})
    for (int64_t m : {1, 5, 64}) {
      SCOPED_TRACE(testing::Message() << "k=" << k << " m=" << m);
      Pair x = make({m, k}), w = make({80, k}, 0.1f), b = make({80}), o = make({m, 80});
      Pair of = make({m, 80}, 1.0f, SABLE_DTYPE_F32);
      const size_t w_bytes = static_cast<size_t>(80 * k) * 2;
      if (k != 96) ops::register_weight_range(w.dev.get(), w_bytes);
      auto xc = x.cpu(), wc = w.cpu(), bc = b.cpu(), oc = o.cpu(), ofc = of.cpu();
      auto xg = x.gpu(), wg = w.gpu(), bg = b.gpu(), og = o.gpu(), ofg = of.gpu();
      ASSERT_EQ(c_->gemm(&cpu_ctx_, &xc, &wc, &bc, &oc), SABLE_OK);
      ASSERT_EQ(g_->gemm(&gpu_ctx_, &xg, &wg, &bg, &og), SABLE_OK) << gpu_ctx_.last_error;
      expect_close(o);
      ASSERT_EQ(c_->gemm(&cpu_ctx_, &xc, &wc, nullptr, &ofc), SABLE_OK);
      ASSERT_EQ(g_->gemm(&gpu_ctx_, &xg, &wg, nullptr, &ofg), SABLE_OK) << gpu_ctx_.last_error;
      if (k != 96) ops::forget_weight_ranges(w.dev.get(), w_bytes);
      expect_close(of);
    }
}

// One x row over more weight rows than the GPU holds one-row warps (the 8B's q|k|v shape on an
// H100 or H200): two rows a warp (one under SABLE_GEMV_WAVE_ROWS=0); an odd N leaves the last warp
// one row.
TEST_F(CudaOpsTest, GemvOneXRowTwoRowsAWarp) {
  const int64_t n = 6145, k = 4096;
  Pair x = make({1, k}), w = make({n, k}, 0.02f), b = make({n}), o = make({1, n});
  auto xc = x.cpu(), wc = w.cpu(), bc = b.cpu(), oc = o.cpu();
  auto xg = x.gpu(), wg = w.gpu(), bg = b.gpu(), og = o.gpu();
  ASSERT_EQ(c_->gemm(&cpu_ctx_, &xc, &wc, &bc, &oc), SABLE_OK);
  ASSERT_EQ(g_->gemm(&gpu_ctx_, &xg, &wg, &bg, &og), SABLE_OK) << gpu_ctx_.last_error;
  expect_close(o);
}

TEST_F(CudaOpsTest, RmsNormWithResidual) {
  for (int64_t h : {64, 100, 896}) {
    Pair x = make({7, h}), r = make({7, h}), w = make({h}), o = make({7, h});
    auto xc = x.cpu(), rc = r.cpu(), wc = w.cpu(), oc = o.cpu();
    auto xg = x.gpu(), rg = r.gpu(), wg = w.gpu(), og = o.gpu();
    ASSERT_EQ(c_->rms_norm(&cpu_ctx_, &xc, &rc, &wc, 1e-6f, 0.0f, &oc), SABLE_OK);
    ASSERT_EQ(g_->rms_norm(&gpu_ctx_, &xg, &rg, &wg, 1e-6f, 0.0f, &og), SABLE_OK);
    expect_close(o);
    expect_close(r);
    ASSERT_EQ(c_->rms_norm(&cpu_ctx_, &xc, nullptr, &wc, 1e-6f, 1.0f, &oc), SABLE_OK);
    ASSERT_EQ(g_->rms_norm(&gpu_ctx_, &xg, nullptr, &wg, 1e-6f, 1.0f, &og), SABLE_OK);
    expect_close(o);
  }
}

TEST_F(CudaOpsTest, LayerNorm) {
  Pair x = make({5, 64}), w = make({64}), b = make({64}), o = make({5, 64});
  auto xc = x.cpu(), wc = w.cpu(), bc = b.cpu(), oc = o.cpu();
  auto xg = x.gpu(), wg = w.gpu(), bg = b.gpu(), og = o.gpu();
  ASSERT_EQ(c_->layer_norm(&cpu_ctx_, &xc, nullptr, &wc, &bc, 1e-5f, &oc), SABLE_OK);
  ASSERT_EQ(g_->layer_norm(&gpu_ctx_, &xg, nullptr, &wg, &bg, 1e-5f, &og), SABLE_OK);
  expect_close(o);
}

TEST_F(CudaOpsTest, RopeBothStylesPartial) {
  const int64_t t = 9, hq = 4, hk = 2, d = 32, maxpos = 64;
  for (int32_t style : {SABLE_ROPE_NEOX, SABLE_ROPE_INTERLEAVED}) {
    for (int32_t rot : {32, 16}) {
      Pair q = make({t, hq, d}), k = make({t, hk, d});
      Pair cs = make({maxpos, rot}, 1.0f, SABLE_DTYPE_F32);
      std::vector<int32_t> pos(t);
      for (int i = 0; i < t; ++i) pos[i] = (i * 7) % maxpos;
      DeviceBuffer dpos(t * 4);
      dpos.upload(pos);
      SableTensor pc{}, pg{};
      pc = q.view(pos.data(), SABLE_DTYPE_I32, SABLE_DEVICE_CPU);
      pc.ndim = 1;
      pc.shape[0] = t;
      pc.strides[0] = 1;
      pg = pc;
      pg.device_type = SABLE_DEVICE_CUDA;
      pg.data = dpos.get();
      auto qc = q.cpu(), kc = k.cpu(), csc = cs.cpu(), qg = q.gpu(), kg = k.gpu(), csg = cs.gpu();
      ASSERT_EQ(c_->rope(&cpu_ctx_, &qc, &kc, &pc, &csc, rot, style), SABLE_OK);
      ASSERT_EQ(g_->rope(&gpu_ctx_, &qg, &kg, &pg, &csg, rot, style), SABLE_OK);
      expect_close(q);
      expect_close(k);
    }
  }
}

TEST_F(CudaOpsTest, Activations) {
  for (int32_t act : {SABLE_ACT_SILU, SABLE_ACT_GELU, SABLE_ACT_GELU_TANH, SABLE_ACT_RELU}) {
    Pair x = make({6, 2 * 40}), o = make({6, 40}), x2 = make({6, 40}), o2 = make({6, 40});
    auto xc = x.cpu(), oc = o.cpu(), xg = x.gpu(), og = o.gpu();
    ASSERT_EQ(c_->act_mul(&cpu_ctx_, act, &xc, &oc), SABLE_OK);
    ASSERT_EQ(g_->act_mul(&gpu_ctx_, act, &xg, &og), SABLE_OK);
    expect_close(o);
    auto x2c = x2.cpu(), o2c = o2.cpu(), x2g = x2.gpu(), o2g = o2.gpu();
    ASSERT_EQ(c_->activation(&cpu_ctx_, act, &x2c, &o2c), SABLE_OK);
    ASSERT_EQ(g_->activation(&gpu_ctx_, act, &x2g, &o2g), SABLE_OK);
    expect_close(o2);
  }
}

TEST_F(CudaOpsTest, BinaryScaleSigmoid) {
  Pair a = make({4, 24}), b = make({1, 24}), c = make({4, 1}), o = make({4, 24});
  auto ac = a.cpu(), bc = b.cpu(), cc = c.cpu(), oc = o.cpu();
  auto ag = a.gpu(), bg = b.gpu(), cg = c.gpu(), og = o.gpu();
  ASSERT_EQ(c_->add(&cpu_ctx_, &ac, &bc, &oc), SABLE_OK);
  ASSERT_EQ(g_->add(&gpu_ctx_, &ag, &bg, &og), SABLE_OK);
  expect_close(o);
  ASSERT_EQ(c_->mul(&cpu_ctx_, &ac, &cc, &oc), SABLE_OK);
  ASSERT_EQ(g_->mul(&gpu_ctx_, &ag, &cg, &og), SABLE_OK);
  expect_close(o);
  ASSERT_EQ(c_->scale(&cpu_ctx_, &ac, 0.37f, &oc), SABLE_OK);
  ASSERT_EQ(g_->scale(&gpu_ctx_, &ag, 0.37f, &og), SABLE_OK);
  expect_close(o);
  ASSERT_EQ(c_->sigmoid(&cpu_ctx_, &ac, &oc), SABLE_OK);
  ASSERT_EQ(g_->sigmoid(&gpu_ctx_, &ag, &og), SABLE_OK);
  expect_close(o);
}

TEST_F(CudaOpsTest, StridedCopyGatherEmbeddingArgmax) {
  Pair src = make({5, 48}), dst = make({5, 16});
  SableTensor sc = src.cpu(), sg = src.gpu();
  for (SableTensor* s : {&sc, &sg}) {  // columns [16, 32): a strided view
    s->shape[1] = 16;
    s->data = static_cast<char*>(s->data) + 16 * (s == &sc ? 4 : 2);
  }
  auto dc = dst.cpu(), dg = dst.gpu();
  ASSERT_EQ(c_->copy(&cpu_ctx_, &sc, &dc), SABLE_OK);
  ASSERT_EQ(g_->copy(&gpu_ctx_, &sg, &dg), SABLE_OK) << gpu_ctx_.last_error;
  expect_close(dst, 1e-6);

  Pair table = make({50, 32}), rows = make({3, 32});
  std::vector<int32_t> ids = {4, 49, 0};
  DeviceBuffer dids(12);
  dids.upload(ids);
  SableTensor ic = table.view(ids.data(), SABLE_DTYPE_I32, SABLE_DEVICE_CPU);
  ic.ndim = 1;
  ic.shape[0] = 3;
  ic.strides[0] = 1;
  SableTensor ig = ic;
  ig.device_type = SABLE_DEVICE_CUDA;
  ig.data = dids.get();
  auto tc = table.cpu(), tg = table.gpu(), rc = rows.cpu(), rg = rows.gpu();
  ASSERT_EQ(c_->embedding(&cpu_ctx_, &tc, &ic, &rc), SABLE_OK);
  ASSERT_EQ(g_->embedding(&gpu_ctx_, &tg, &ig, &rg), SABLE_OK);
  expect_close(rows, 1e-6);
  ASSERT_EQ(c_->gather_rows(&cpu_ctx_, &tc, &ic, &rc), SABLE_OK);
  ASSERT_EQ(g_->gather_rows(&gpu_ctx_, &tg, &ig, &rg), SABLE_OK);
  expect_close(rows, 1e-6);

  // One rank's vocabulary shard, rows [first, first + 20) of the table: the ids it does not hold
  // (49 for the first, all three for the second, 4 and 0 for the third) read as zero rows, as in
  // the CPU reference.
  for (int64_t first : {int64_t{0}, int64_t{20}, int64_t{30}}) {
    SableTensor sc = tc, sg = tg;
    sc.shape[0] = sg.shape[0] = 20;
    sc.data = static_cast<char*>(sc.data) + first * 32 * 4;
    sg.data = static_cast<char*>(sg.data) + first * 32 * 2;
    ASSERT_EQ(c_->embedding_shard(&cpu_ctx_, &sc, &ic, first, &rc), SABLE_OK);
    ASSERT_EQ(g_->embedding_shard(&gpu_ctx_, &sg, &ig, first, &rg), SABLE_OK) << gpu_ctx_.last_error;
    expect_close(rows, 1e-6);
  }

  Pair logits = make({3, 1000}, 1.0f, SABLE_DTYPE_F32);
  DeviceBuffer dout(12);
  SableTensor og = ig;
  og.data = dout.get();
  auto lg = logits.gpu();
  ASSERT_EQ(g_->argmax(&gpu_ctx_, &lg, &og), SABLE_OK);
  std::vector<int32_t> got = dout.download<int32_t>(3);
  for (int r = 0; r < 3; ++r) {
    auto b = logits.host.begin() + r * 1000;
    EXPECT_EQ(got[r], std::max_element(b, b + 1000) - b);
  }
}

TEST_F(CudaOpsTest, MoeRouting) {
  for (int renorm : {0, 1}) {
    Pair logits = make({11, 8}, 1.0f, SABLE_DTYPE_F32);
    std::vector<float> wc(22);
    std::vector<int32_t> idc(22);
    SableTensor lc = logits.cpu(), lg = logits.gpu();
    SableTensor twc = logits.view(wc.data(), SABLE_DTYPE_F32, SABLE_DEVICE_CPU);
    twc.ndim = 2;
    twc.shape[0] = 11;
    twc.shape[1] = 2;
    twc.strides[0] = 2;
    twc.strides[1] = 1;
    SableTensor tic = twc;
    tic.dtype = SABLE_DTYPE_I32;
    tic.data = idc.data();
    DeviceBuffer dw(88), di(88);
    SableTensor twg = twc, tig = tic;
    twg.device_type = tig.device_type = SABLE_DEVICE_CUDA;
    twg.data = dw.get();
    tig.data = di.get();
    ASSERT_EQ(c_->moe_route(&cpu_ctx_, 0, &lc, 2, SABLE_MOE_SOFTMAX, renorm, &twc, &tic), SABLE_OK);
    ASSERT_EQ(g_->moe_route(&gpu_ctx_, 0, &lg, 2, SABLE_MOE_SOFTMAX, renorm, &twg, &tig), SABLE_OK);
    EXPECT_EQ(di.download<int32_t>(22), idc);
    std::vector<float> wg = dw.download<float>(22);
    for (int i = 0; i < 22; ++i) EXPECT_NEAR(wg[i], wc[i], 1e-5);
  }
}

TEST_F(CudaOpsTest, BadShapesAreErrorsNotCrashes) {
  Pair x = make({4, 8}), w = make({6, 9}), o = make({4, 6});
  auto xg = x.gpu(), wg = w.gpu(), og = o.gpu();
  EXPECT_NE(g_->gemm(&gpu_ctx_, &xg, &wg, nullptr, &og), SABLE_OK);
  EXPECT_NE(std::string(gpu_ctx_.last_error).find("gemm"), std::string::npos);
  auto xc = x.cpu();
  EXPECT_NE(g_->gemm(&gpu_ctx_, &xc, &wg, nullptr, &og), SABLE_OK);  // host tensor on CUDA
}


// ---- MoE: fused experts and expert recording ------------------------------------------------

// Host and device copies of an I32 [rows, cols] tensor.
struct IdPair {
  std::vector<int32_t> host;
  DeviceBuffer dev;
  int64_t rows = 0, cols = 0;
  SableTensor view(void* p, int32_t device) {
    SableTensor t = cuda_tensor(p, SABLE_DTYPE_I32, {rows, cols});
    t.device_type = device;
    return t;
  }
  SableTensor cpu() { return view(host.data(), SABLE_DEVICE_CPU); }
  SableTensor gpu() { return view(dev.get(), SABLE_DEVICE_CUDA); }
};

// k distinct experts per token (as top-k routing gives), uploaded.
IdPair random_expert_ids(int64_t tokens, int32_t k, int32_t experts, std::mt19937& rng) {
  IdPair p;
  p.rows = tokens;
  p.cols = k;
  std::vector<int32_t> all(experts);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int32_t e = 0; e < experts; ++e) all[e] = e;
    std::shuffle(all.begin(), all.end(), rng);
    p.host.insert(p.host.end(), all.begin(), all.begin() + k);
  }
  p.dev = DeviceBuffer(p.host.size() * 4);
  p.dev.upload(p.host);
  return p;
}

// CPU fp32 vs CUDA bf16 fused experts over decode-sized, odd and prefill-sized batches.
TEST_F(CudaOpsTest, MoeExpertsMatchCpu) {
  struct Case {
    int64_t h, inter;
    int32_t act;
  };
  // 128/96: the cp.async path with several n-tiles; 36/20: the element-load path (K % 8 != 0).
  for (Case c : {Case{128, 96, SABLE_ACT_SILU}, Case{36, 20, SABLE_ACT_SILU},
                 Case{64, 32, SABLE_ACT_GELU}}) {
    for (int64_t t : {1, 5, 300}) {
      for (int32_t e : {8, 60}) {
        for (int32_t k : {2, 4}) {
          SCOPED_TRACE(testing::Message() << "T=" << t << " E=" << e << " k=" << k
                                          << " H=" << c.h << " I=" << c.inter);
          Pair x = make({t, c.h});
          Pair wgu = make({e, 2 * c.inter, c.h}, 1.0f / std::sqrt(float(c.h)));
          Pair wd = make({e, c.h, c.inter}, 1.0f / std::sqrt(float(c.inter)));
          Pair w = make({t, k}, 0.5f, SABLE_DTYPE_F32);
          Pair o = make({t, c.h});
          IdPair ids = random_expert_ids(t, k, e, rng_);
          auto xc = x.cpu(), gc = wgu.cpu(), dc = wd.cpu(), wc = w.cpu(), oc = o.cpu();
          auto xg = x.gpu(), gg = wgu.gpu(), dg = wd.gpu(), wg = w.gpu(), og = o.gpu();
          auto ic = ids.cpu(), ig = ids.gpu();
          ASSERT_EQ(c_->moe_experts(&cpu_ctx_, &xc, &gc, &dc, &wc, &ic, c.act, &oc), SABLE_OK)
              << cpu_ctx_.last_error;
          ASSERT_EQ(g_->moe_experts(&gpu_ctx_, &xg, &gg, &dg, &wg, &ig, c.act, &og), SABLE_OK)
              << gpu_ctx_.last_error;
          expect_close(o, 2e-2);
        }
      }
    }
  }
}

// The op records into a CUDA graph (no host sync, no allocation) and the replay reads new inputs.
TEST_F(CudaOpsTest, MoeExpertsCapturedInCudaGraph) {
  const int64_t t = 3, h = 64, inter = 48;
  const int32_t e = 8, k = 2;
  Pair x = make({t, h}), wgu = make({e, 2 * inter, h}, 0.125f), wd = make({e, h, inter}, 0.15f);
  Pair w = make({t, k}, 0.5f, SABLE_DTYPE_F32), o = make({t, h});
  IdPair ids = random_expert_ids(t, k, e, rng_);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  gpu_ctx_.stream = stream;
  auto xg = x.gpu(), gg = wgu.gpu(), dg = wd.gpu(), wg = w.gpu(), og = o.gpu(), ig = ids.gpu();
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const SableStatus st = g_->moe_experts(&gpu_ctx_, &xg, &gg, &dg, &wg, &ig, SABLE_ACT_SILU, &og);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_EQ(st, SABLE_OK) << gpu_ctx_.last_error;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  // New activations and routing written into the captured buffers: the replay must use them.
  Pair x2 = make({t, h});
  IdPair ids2 = random_expert_ids(t, k, e, rng_);
  ASSERT_EQ(cudaMemcpy(ids.dev.get(), ids2.host.data(), ids2.host.size() * 4,
                       cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(x.dev.get(), x2.dev.get(), t * h * 2, cudaMemcpyDeviceToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  auto xc = x2.cpu(), gc = wgu.cpu(), dc = wd.cpu(), wc = w.cpu(), oc = o.cpu(), ic = ids2.cpu();
  ASSERT_EQ(c_->moe_experts(&cpu_ctx_, &xc, &gc, &dc, &wc, &ic, SABLE_ACT_SILU, &oc), SABLE_OK);
  expect_close(o, 2e-2);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  gpu_ctx_.stream = nullptr;
  cudaStreamDestroy(stream);
}

TEST_F(CudaOpsTest, MoeExpertsBadInputsAreErrors) {
  Pair x = make({4, 16}), wgu = make({8, 32, 16}), wd = make({8, 16, 16}), o = make({4, 16});
  Pair w = make({4, 2}, 1.0f, SABLE_DTYPE_F32), wrong = make({4, 3}, 1.0f, SABLE_DTYPE_F32);
  Pair xf = make({4, 16}, 1.0f, SABLE_DTYPE_F32);
  IdPair ids = random_expert_ids(4, 2, 8, rng_);
  auto xg = x.gpu(), gg = wgu.gpu(), dg = wd.gpu(), og = o.gpu(), wg = w.gpu(), ig = ids.gpu();
  auto expect_error = [&](SableStatus st, const char* text) {
    EXPECT_NE(st, SABLE_OK);
    ASSERT_NE(gpu_ctx_.last_error, nullptr);
    EXPECT_NE(std::string(gpu_ctx_.last_error).find(text), std::string::npos)
        << gpu_ctx_.last_error;
  };
  auto xfg = xf.gpu(), wrongg = wrong.gpu();
  expect_error(g_->moe_experts(&gpu_ctx_, &xfg, &gg, &dg, &wg, &ig, SABLE_ACT_SILU, &og), "BF16");
  expect_error(g_->moe_experts(&gpu_ctx_, &xg, &gg, &dg, &wrongg, &ig, SABLE_ACT_SILU, &og),
               "weights");
  auto wasids = w.gpu();  // F32 where I32 ids belong
  expect_error(g_->moe_experts(&gpu_ctx_, &xg, &gg, &dg, &wg, &wasids, SABLE_ACT_SILU, &og),
               "ids");
  expect_error(g_->moe_experts(&gpu_ctx_, &xg, &gg, &gg, &wg, &ig, SABLE_ACT_SILU, &og), "w_down");
  expect_error(g_->moe_experts(&gpu_ctx_, &xg, &gg, &dg, &wg, &ig, 17, &og), "activation");
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Route [T, E] logits on both devices for one layer; returns the CPU ids.
std::vector<int32_t> route_both(const SableOps* cpu, const SableOps* gpu, SableOpsContext* cc,
                                SableOpsContext* gc, int32_t layer, Pair& logits, int32_t k,
                                SableStatus* gpu_status) {
  const int64_t t = logits.shape[0];
  std::vector<float> wc(t * k);
  std::vector<int32_t> idc(t * k);
  DeviceBuffer dw(t * k * 4), di(t * k * 4);
  SableTensor twc = cuda_tensor(wc.data(), SABLE_DTYPE_F32, {t, k}), tic = twc;
  twc.device_type = tic.device_type = SABLE_DEVICE_CPU;
  tic.dtype = SABLE_DTYPE_I32;
  tic.data = idc.data();
  SableTensor twg = cuda_tensor(dw.get(), SABLE_DTYPE_F32, {t, k});
  SableTensor tig = cuda_tensor(di.get(), SABLE_DTYPE_I32, {t, k});
  SableTensor lc = logits.cpu(), lg = logits.gpu();
  EXPECT_EQ(cpu->moe_route(cc, layer, &lc, k, SABLE_MOE_SOFTMAX, 1, &twc, &tic), SABLE_OK);
  *gpu_status = gpu->moe_route(gc, layer, &lg, k, SABLE_MOE_SOFTMAX, 1, &twg, &tig);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return idc;
}

TEST_F(CudaOpsTest, MoeRouteRecordsExpertCounts) {
  const int32_t layers = 3, experts = 60, k = 4;
  ops::ExpertRecorder cpu_rec, gpu_rec;
  cpu_ctx_.expert_recorder = &cpu_rec;
  DeviceBuffer counts(layers * experts * 8);
  ASSERT_EQ(cudaMemset(counts.get(), 0, layers * experts * 8), cudaSuccess);

  // Off: counters set but no recorder -> nothing is counted.
  gpu_ctx_.expert_counts_device = static_cast<int64_t*>(counts.get());
  gpu_ctx_.expert_counts_layers = layers;
  gpu_ctx_.expert_counts_experts = experts;
  Pair l0 = make({7, experts}, 1.0f, SABLE_DTYPE_F32);
  SableStatus st = SABLE_OK;
  ops::ExpertRecorder scratch_rec;
  cpu_ctx_.expert_recorder = &scratch_rec;  // keep cpu_rec for the recorded runs below
  route_both(c_, g_, &cpu_ctx_, &gpu_ctx_, 1, l0, k, &st);
  ASSERT_EQ(st, SABLE_OK) << gpu_ctx_.last_error;
  for (int64_t v : counts.download<int64_t>(layers * experts)) ASSERT_EQ(v, 0);

  // On, device counters: layer 1 twice (decode, prefill), layer 2 once.
  cpu_ctx_.expert_recorder = &cpu_rec;
  gpu_ctx_.expert_recorder = &gpu_rec;
  Pair l1 = make({1, experts}, 1.0f, SABLE_DTYPE_F32), l2 = make({300, experts}, 1.0f,
                                                                  SABLE_DTYPE_F32);
  Pair l3 = make({5, experts}, 1.0f, SABLE_DTYPE_F32);
  for (auto [layer, lp] : {std::pair{1, &l1}, std::pair{1, &l2}, std::pair{2, &l3}}) {
    route_both(c_, g_, &cpu_ctx_, &gpu_ctx_, layer, *lp, k, &st);
    ASSERT_EQ(st, SABLE_OK) << gpu_ctx_.last_error;
  }
  const std::vector<int64_t> got = counts.download<int64_t>(layers * experts);
  const ops::ExpertRecorder::Counts want = cpu_rec.snapshot();
  int64_t total = 0;
  for (int32_t layer = 0; layer < layers; ++layer)
    for (int32_t e = 0; e < experts; ++e) {
      const int64_t w = layer < int32_t(want.size()) && e < int32_t(want[layer].size())
                            ? want[layer][e] : 0;
      EXPECT_EQ(got[layer * experts + e], w) << "layer " << layer << " expert " << e;
      total += got[layer * experts + e];
    }
  EXPECT_EQ(total, (1 + 300 + 5) * k);
  EXPECT_EQ(gpu_rec.total(), 0);  // device counters took them, not the host recorder

  // A layer beyond the counters is an error naming it.
  route_both(c_, g_, &cpu_ctx_, &gpu_ctx_, layers, l1, k, &st);
  EXPECT_NE(st, SABLE_OK);
  EXPECT_NE(std::string(gpu_ctx_.last_error).find("layer"), std::string::npos);

  // On, no device counters: the host fallback records into the recorder itself.
  gpu_ctx_.expert_counts_device = nullptr;
  ops::ExpertRecorder cpu_rec2;
  cpu_ctx_.expert_recorder = &cpu_rec2;
  route_both(c_, g_, &cpu_ctx_, &gpu_ctx_, 0, l2, k, &st);
  ASSERT_EQ(st, SABLE_OK) << gpu_ctx_.last_error;
  EXPECT_EQ(gpu_rec.snapshot(), cpu_rec2.snapshot());
  EXPECT_EQ(gpu_rec.total(), 300 * k);
  cpu_ctx_.expert_recorder = nullptr;
  gpu_ctx_.expert_recorder = nullptr;
}

}  // namespace
}  // namespace sable::gputest

namespace sable::gputest {
namespace {

// q/k norm of a fused projection: rms_norm over a [T, heads, D] view whose tokens are a whole
// qkv row apart.
// gemm_fused: the one-kernel decode form (M <= 8) and the composed form (larger M, or when the
// one-kernel form is off) against the CPU table's composed ops, for every prologue/epilogue.
TEST_F(CudaOpsTest, GemmFusedMatchesCpu) {
  struct Config {
    const char* name;
    bool norm, bias, accumulate, gated;
    int32_t rope_cols, head_dim, rot, style;
    int64_t n, k;
  };
  const Config configs[] = {
      {"plain", false, false, false, false, 0, 0, 0, 0, 80, 96},
      {"norm", true, false, false, false, 0, 0, 0, 0, 81, 896},  // odd N: a one-row task
      {"norm+rope neox", true, true, false, false, 4 * 64, 64, 64, SABLE_ROPE_NEOX, 6 * 64, 128},
      {"rope partial", true, false, false, false, 3 * 64, 64, 32, SABLE_ROPE_NEOX, 3 * 64 + 33, 64},
      {"rope interleaved", false, false, false, false, 2 * 32, 32, 16, SABLE_ROPE_INTERLEAVED, 96,
       72},
      {"accumulate+bias", false, true, true, false, 0, 0, 0, 0, 200, 256},
      {"norm+gated", true, true, false, true, 0, 0, 0, 0, 2 * 150, 136},
      {"gated+accumulate", false, false, true, true, 0, 0, 0, 0, 2 * 64, 4096},
      // Above the one kernel's weight limit: the skinny GEMM's and cuBLASLt's accumulate; the
      // composed norm, rope and act·mul (or, with SABLE_FUSED_GEMV=2, a separate norm and the one
      // kernel's epilogue).
      {"accumulate large", false, true, true, false, 0, 0, 0, 0, 3200, 4096},
      {"norm+rope large", true, false, false, false, 24 * 128, 128, 128, SABLE_ROPE_NEOX, 26 * 128,
       4096},
      {"norm+gated large", true, false, false, true, 0, 0, 0, 0, 2 * 1600, 4096},
  };
  const int64_t maxpos = 64;
  for (const Config& c : configs) {
    for (int64_t m : {1, 2, 5, 8, 19}) {
      SCOPED_TRACE(testing::Message() << c.name << " m=" << m);
      const int64_t out_cols = c.gated ? c.n / 2 : c.n;
      Pair x = make({m, c.k}), w = make({c.n, c.k}, 0.05f), b = make({c.n}), g = make({c.k});
      Pair o = make({m, out_cols});
      Pair cs = make({maxpos, std::max(c.rot, 2)}, 1.0f, SABLE_DTYPE_F32);
      std::vector<int32_t> pos(m);
      for (int64_t i = 0; i < m; ++i) pos[i] = static_cast<int32_t>((i * 11 + 3) % maxpos);
      DeviceBuffer dpos(m * 4);
      dpos.upload(pos);
      SableTensor pc = o.view(pos.data(), SABLE_DTYPE_I32, SABLE_DEVICE_CPU);
      pc.ndim = 1;
      pc.shape[0] = m;
      pc.strides[0] = 1;
      SableTensor pg = pc;
      pg.device_type = SABLE_DEVICE_CUDA;
      pg.data = dpos.get();
      auto xc = x.cpu(), wc = w.cpu(), bc = b.cpu(), gc = g.cpu(), oc = o.cpu(), csc = cs.cpu();
      auto xg = x.gpu(), wg = w.gpu(), bg = b.gpu(), gg = g.gpu(), og = o.gpu(), csg = cs.gpu();
      auto fusion = [&](const SableTensor* norm, const SableTensor* p, const SableTensor* table) {
        SableGemmFusion f{};
        f.struct_size = sizeof(f);
        f.norm_weight = c.norm ? norm : nullptr;
        f.norm_eps = 1e-6f;
        f.gated = c.gated;
        f.act = SABLE_ACT_SILU;
        f.rope_cols = c.rope_cols;
        f.rope_head_dim = c.head_dim;
        f.rope_dim = c.rot;
        f.rope_style = c.style;
        f.positions = p;
        f.cos_sin = table;
        f.accumulate = c.accumulate;
        return f;
      };
      const SableGemmFusion fc = fusion(&gc, &pc, &csc), fg = fusion(&gg, &pg, &csg);
      ASSERT_EQ(c_->gemm_fused(&cpu_ctx_, &xc, &wc, c.bias ? &bc : nullptr, &fc, &oc), SABLE_OK)
          << cpu_ctx_.last_error;
      ASSERT_EQ(g_->gemm_fused(&gpu_ctx_, &xg, &wg, c.bias ? &bg : nullptr, &fg, &og), SABLE_OK)
          << gpu_ctx_.last_error;
      expect_close(o);
    }
  }
  // Bad fusions are errors naming the field, not crashes.
  Pair x = make({1, 64}), w = make({96, 64}), o = make({1, 96});
  auto xg = x.gpu(), wg = w.gpu(), og = o.gpu();
  SableGemmFusion f{};
  f.struct_size = sizeof(f);
  f.rope_cols = 50;  // not a multiple of the head dim
  f.rope_head_dim = 32;
  f.rope_dim = 32;
  EXPECT_EQ(g_->gemm_fused(&gpu_ctx_, &xg, &wg, nullptr, &f, &og), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(gpu_ctx_.last_error).find("rope_cols"), std::string::npos);
  f = SableGemmFusion{};
  f.struct_size = sizeof(f);
  f.gated = 1;
  f.act = SABLE_ACT_SILU;  // out is [1, 96], gated wants [1, 48]
  EXPECT_EQ(g_->gemm_fused(&gpu_ctx_, &xg, &wg, nullptr, &f, &og), SABLE_ERR_INVALID_ARGUMENT);
}

// The decode GEMVs load a registered weight's first bytes before waiting for the kernel ahead
// (core/ops/weight_ranges.h); x written by that kernel must still be read after it finishes, and
// a w some kernel just wrote (not registered) must be read as written. K 4096 so that the early
// batch is a part of each row; 16 MB of weights, under the fused kernel's limit (kFusedMaxBytes).
TEST_F(CudaOpsTest, GemvEarlyLoadsWaitForTheirInputs) {
  for (int64_t m : {1, 3}) {
    SCOPED_TRACE(testing::Message() << "m=" << m);
    const int64_t k = 4096, n = 2048;
    Pair src = make({m, k}), x = make({m, k}), w = make({n, k}, 0.02f), o = make({m, n});
    Pair wsrc = make({n, k}, 0.02f), w2 = make({n, k}, 0.02f), g = make({k});
    ops::register_weight_range(w.dev.get(), static_cast<size_t>(n * k) * 2);
    auto srcc = src.cpu(), xc = x.cpu(), wc = w.cpu(), oc = o.cpu(), gc = g.cpu();
    auto srcg = src.gpu(), xg = x.gpu(), wg = w.gpu(), og = o.gpu(), gg = g.gpu();
    // x = 0.5 src by the kernel just ahead of the GEMV, then out = x · wᵀ.
    ASSERT_EQ(c_->scale(&cpu_ctx_, &srcc, 0.5f, &xc), SABLE_OK);
    ASSERT_EQ(c_->gemm(&cpu_ctx_, &xc, &wc, nullptr, &oc), SABLE_OK);
    ASSERT_EQ(g_->scale(&gpu_ctx_, &srcg, 0.5f, &xg), SABLE_OK);
    ASSERT_EQ(g_->gemm(&gpu_ctx_, &xg, &wg, nullptr, &og), SABLE_OK) << gpu_ctx_.last_error;
    expect_close(o);
    // The fused kernel (norm prologue) the same way.
    SableGemmFusion f{};
    f.struct_size = sizeof(f);
    f.norm_eps = 1e-6f;
    f.norm_weight = &gc;
    ASSERT_EQ(c_->gemm_fused(&cpu_ctx_, &xc, &wc, nullptr, &f, &oc), SABLE_OK);
    f.norm_weight = &gg;
    ASSERT_EQ(g_->scale(&gpu_ctx_, &srcg, 0.5f, &xg), SABLE_OK);
    ASSERT_EQ(g_->gemm_fused(&gpu_ctx_, &xg, &wg, nullptr, &f, &og), SABLE_OK)
        << gpu_ctx_.last_error;
    expect_close(o);
    // w2 = 3 wsrc by the kernel just ahead: not a registered weight, read after the write.
    auto wsrcc = wsrc.cpu(), w2c = w2.cpu(), wsrcg = wsrc.gpu(), w2g = w2.gpu();
    ASSERT_EQ(c_->scale(&cpu_ctx_, &wsrcc, 3.0f, &w2c), SABLE_OK);
    ASSERT_EQ(c_->gemm(&cpu_ctx_, &xc, &w2c, nullptr, &oc), SABLE_OK);
    ASSERT_EQ(g_->scale(&gpu_ctx_, &wsrcg, 3.0f, &w2g), SABLE_OK);
    ASSERT_EQ(g_->gemm(&gpu_ctx_, &xg, &w2g, nullptr, &og), SABLE_OK) << gpu_ctx_.last_error;
    expect_close(o);
    ops::forget_weight_ranges(w.dev.get(), static_cast<size_t>(n * k) * 2);
  }
}

TEST_F(CudaOpsTest, RmsNormPerHeadStridedView) {
  const int64_t t = 5, heads = 3, d = 32, width = 160;
  Pair qkv = make({t, width}), w = make({d}), o = make({t * heads, d});
  SableTensor xc = qkv.cpu(), xg = qkv.gpu();
  for (SableTensor* x : {&xc, &xg}) {
    x->ndim = 3;
    x->shape[0] = t;
    x->shape[1] = heads;
    x->shape[2] = d;
    x->strides[0] = width;
    x->strides[1] = d;
    x->strides[2] = 1;
    x->data = static_cast<char*>(x->data) + 16 * (x == &xc ? 4 : 2);  // start at column 16
  }
  auto wc = w.cpu(), wg = w.gpu(), oc = o.cpu(), og = o.gpu();
  ASSERT_EQ(c_->rms_norm(&cpu_ctx_, &xc, nullptr, &wc, 1e-6f, 0.0f, &oc), SABLE_OK);
  ASSERT_EQ(g_->rms_norm(&gpu_ctx_, &xg, nullptr, &wg, 1e-6f, 0.0f, &og), SABLE_OK)
      << gpu_ctx_.last_error;
  expect_close(o);
}

}  // namespace
}  // namespace sable::gputest
