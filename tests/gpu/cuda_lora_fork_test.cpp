// The LoRA delta beside the base projection's GEMM (core/ops/cuda/lora_fork.h, lora_pending.h):
// the shrink forked where x was ready, eager and captured, and not forked when another op ran
// between the GEMM and the LoRA call; the expand forked with it, which must give the same bits as
// the expand after the GEMM; its delta left to the rms_norm, act_mul or rope after it (fused, the
// default; SABLE_LORA_QKV_ROPE=0 leaves q|k|v's to its own add), the same bits again, with the
// delta zeroed by the expand or by a memset (SABLE_LORA_ZERO_FILL=0). Part of cuda_ops_test
// (skipped without a GPU).
#include <iterator>
#include <tuple>
#include <utility>

#include "tests/gpu/cuda_lora_fixture.h"

namespace sable::gputest::lora {

// rope's cos/sin table [positions, rot]: cos of the rot / 2 frequencies, then their sin.
static std::vector<float> rope_table(int32_t positions, int32_t rot) {
  std::vector<float> cs(static_cast<size_t>(positions * rot));
  for (int32_t p = 0; p < positions; ++p)
    for (int32_t i = 0; i < rot / 2; ++i) {
      const float a = p * std::pow(10000.0f, -2.0f * i / rot);
      cs[static_cast<size_t>(p * rot + i)] = std::cos(a);
      cs[static_cast<size_t>(p * rot + rot / 2 + i)] = std::sin(a);
    }
  return cs;
}

// The decoder's order: the base GEMM of x, then the LoRA call on its output. The shrink then runs
// on a side stream forked where x was ready (eager: events; captured: a graph branch), and the
// expand must still see both the GEMM's output and the shrink's sums. Each stage's outputs are
// appended to `outputs` (to compare the expand's two forms bit for bit).
void CudaLoraOps::forked_beside_gemm(std::vector<std::vector<float>>* outputs) {
  rng_.seed(17);
  init(/*slots=*/3, /*r_stride=*/16, /*rows=*/24, SABLE_DTYPE_BF16);
  for (int32_t m : {SABLE_LORA_GATE, SABLE_LORA_UP}) {
    slot_rank_[0 * kC + m] = 16;
    slot_rank_[2 * kC + m] = 6;
  }
  const int64_t k = 1024, n = 384, width = 2 * n;
  make_pool(kLayer, SABLE_LORA_GATE, k, n);
  make_pool(kLayer, SABLE_LORA_UP, k, n);
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf w = random(static_cast<size_t>(width * k), 1.0f / std::sqrt(float(k)));
  Buf out = random(static_cast<size_t>(rows_ * width), 1.0f);  // overwritten by the GEMM
  Buf base;  // x · wᵀ in double, the GEMM's output before the deltas
  base.dtype = dtype_;
  base.host.assign(static_cast<size_t>(rows_ * width), 0.0f);
  for (int64_t t = 0; t < rows_; ++t)
    for (int64_t c = 0; c < width; ++c) {
      double d = 0;
      for (int64_t e = 0; e < k; ++e)
        d +=
            double(x.host[static_cast<size_t>(t * k + e)]) * w.host[static_cast<size_t>(c * k + e)];
      base.host[static_cast<size_t>(t * width + c)] = static_cast<float>(d);
    }
  std::vector<int32_t> row_slot(static_cast<size_t>(rows_));
  for (int32_t t = 0; t < rows_; ++t) row_slot[static_cast<size_t>(t)] = t % 5 == 4 ? -1 : t % 3;
  const std::vector<float> want =
      reference(x, k, base, width, {SABLE_LORA_GATE, SABLE_LORA_UP}, {0, n}, row_slot);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ctx_.stream = stream;
  SableTensor xt = cuda_tensor(x.dev.get(), dtype_, {rows_, k});
  SableTensor wt = cuda_tensor(w.dev.get(), dtype_, {width, k});
  SableTensor ot = cuda_tensor(out.dev.get(), dtype_, {rows_, width});
  DeviceBuffer x2(static_cast<size_t>(rows_ * k) * 2);
  SableTensor x2t = cuda_tensor(x2.get(), dtype_, {rows_, k});
  ops::LoraBatch lb = batch(row_slot);
  auto forward = [&](bool other_op_between) {
    ctx_.lora = &lb;
    ASSERT_EQ(ops::cuda_ops()->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
    if (other_op_between)  // any op but a GEMM may write x: the recorded point is then stale
      ASSERT_EQ(ops::cuda_ops()->copy(&ctx_, &xt, &x2t), SABLE_OK);
    launch(x, k, out, width, SABLE_LORA_GATE, {n, n});
    ctx_.lora = nullptr;
  };
  const bool fork_on = ops::cuda::lora_fork_enabled();
  auto& fork = ops::cuda::lora_fork();
  for (bool between : {false, true}) {
    const int64_t forks = fork.forks();
    forward(between);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(fork.forks() - forks, fork_on && !between ? 1 : 0) << "other op between: " << between;
    outputs->push_back(out.fetch());
    EXPECT_LT(rel_l2(outputs->back(), want), 1e-2) << "eager, other op between: " << between;
  }
  // Captured, then replayed twice (the second replay reads the first's output as its base: the
  // GEMM overwrites it, so both must give the same answer).
  const int64_t forks = fork.forks();
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  forward(false);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(fork.forks() - forks, fork_on ? 1 : 0);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphDestroy(graph);
  for (int replay = 0; replay < 2; ++replay) {
    out.sync();
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    outputs->push_back(out.fetch());
    EXPECT_LT(rel_l2(outputs->back(), want), 1e-2) << "replay " << replay;
  }
  cudaGraphExecDestroy(exec);
  // A GEMM recorded eagerly, then a capture whose first op is the LoRA call: the eager point is
  // no fork point of the graph, so nothing forks and the graph still holds the whole delta.
  {
    const int64_t forks = fork.forks();
    ctx_.lora = &lb;
    ASSERT_EQ(ops::cuda_ops()->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
    cudaGraph_t g2 = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    launch(x, k, out, width, SABLE_LORA_GATE, {n, n});
    ASSERT_EQ(cudaStreamEndCapture(stream, &g2), cudaSuccess);
    ctx_.lora = nullptr;
    EXPECT_EQ(fork.forks(), forks);
    cudaGraphExec_t e2 = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&e2, g2, 0), cudaSuccess);
    cudaGraphDestroy(g2);
    // The graph adds the delta only: replayed on the GEMM's output it gives the reference.
    ASSERT_EQ(ops::cuda_ops()->gemm(&ctx_, &xt, &wt, nullptr, &ot), SABLE_OK);
    ASSERT_EQ(cudaGraphLaunch(e2, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    outputs->push_back(out.fetch());
    EXPECT_LT(rel_l2(outputs->back(), want), 1e-2) << "captured after an eager GEMM";
    cudaGraphExecDestroy(e2);
  }
  cudaStreamDestroy(stream);
}

TEST_F(CudaLoraOps, ShrinkForkedBesideTheBaseGemm) {
  std::vector<std::vector<float>> outputs;
  forked_beside_gemm(&outputs);
}

static void with_expand_mode(const char* mode, const std::function<void()>& body) {
  with_env("SABLE_LORA_EXPAND", mode, body);
}

// The expand forked with the shrink writes fp32 deltas and a kernel after the join adds them
// (`fused` without a pending scope), so every stage must end with the same bits as the expand run
// after the GEMM (`after`, the path before v18).
TEST_F(CudaLoraOps, ExpandBesideTheBaseGemmGivesTheSameBits) {
  std::vector<std::vector<float>> after, fused;
  with_expand_mode("after", [&] { forked_beside_gemm(&after); });
  if (HasFatalFailure()) return;
  with_expand_mode("fused", [&] { forked_beside_gemm(&fused); });
  ASSERT_EQ(after.size(), fused.size());
  for (size_t i = 0; i < after.size(); ++i)
    for (size_t e = 0; e < after[i].size(); ++e)
      ASSERT_EQ(after[i][e], fused[i][e]) << "fused, stage " << i << " element " << e;
}

// The decoder's consumers after a LoRA call: gate|up's output into act_mul, o's into the
// rms_norm that adds it to the residual, and o's again into another op (a copy). In the fused
// mode (the default) the first two add the pending delta in their own kernels and the copy finds
// it added first; every output must have the `after` path's bits.
void CudaLoraOps::consumers(std::vector<std::vector<float>>* outputs, bool fused, int32_t rows) {
  rng_.seed(23);
  init(/*slots=*/3, /*r_stride=*/16, rows, SABLE_DTYPE_BF16);
  for (int32_t m :
       {SABLE_LORA_GATE, SABLE_LORA_UP, SABLE_LORA_O, SABLE_LORA_Q, SABLE_LORA_K, SABLE_LORA_V}) {
    slot_rank_[0 * kC + m] = 16;
    slot_rank_[2 * kC + m] = m == SABLE_LORA_UP || m == SABLE_LORA_K ? 0 : 5;
  }
  const int64_t k = 512, inter = 384;
  const int32_t qh = 4, kh = 2, hd = 64, rot = 48;  // rotary dims below the head's: pass-through
  const int64_t nq = qh * hd, nkv = kh * hd, qkv_w = nq + 2 * nkv;
  make_pool(kLayer, SABLE_LORA_GATE, k, inter);
  make_pool(kLayer, SABLE_LORA_UP, k, inter);
  make_pool(kLayer, SABLE_LORA_O, k, k);
  make_pool(kLayer, SABLE_LORA_Q, k, nq);
  make_pool(kLayer, SABLE_LORA_K, k, nkv);
  make_pool(kLayer, SABLE_LORA_V, k, nkv);
  Buf w_qkv = random(static_cast<size_t>(qkv_w * k), 1.0f / std::sqrt(float(k)));
  Buf qkv = random(static_cast<size_t>(rows_ * qkv_w), 1.0f);
  std::vector<int32_t> positions(static_cast<size_t>(rows_));
  for (int32_t t = 0; t < rows_; ++t) positions[static_cast<size_t>(t)] = (t * 37) % 301;
  const std::vector<float> cos_sin = rope_table(301, rot);
  DeviceBuffer pos_dev(positions.size() * 4), cs_dev(cos_sin.size() * 4);
  pos_dev.upload(positions);
  cs_dev.upload(cos_sin);
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf w_gu = random(static_cast<size_t>(2 * inter * k), 1.0f / std::sqrt(float(k)));
  Buf w_o = random(static_cast<size_t>(k * k), 1.0f / std::sqrt(float(k)));
  Buf norm_w = random(static_cast<size_t>(k), 1.0f);
  Buf residual = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf gu = random(static_cast<size_t>(rows_ * 2 * inter), 1.0f);
  Buf act = random(static_cast<size_t>(rows_ * inter), 1.0f);
  Buf proj = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf h = random(static_cast<size_t>(rows_ * k), 1.0f);
  std::vector<int32_t> row_slot(static_cast<size_t>(rows_));
  for (int32_t t = 0; t < rows_; ++t) row_slot[static_cast<size_t>(t)] = t % 4 == 3 ? -1 : t % 3;
  if (rows_ == 1) row_slot[0] = 0;  // one row (a single request): its views' row strides differ
  // NaNs in the whole arena: a delta row that nobody zeroed (a row without an adapter) poisons
  // the consumer's output.
  arena_->reset();
  const size_t bytes = arena_->capacity();
  void* all = arena_->allocate(bytes, 256);
  ASSERT_NE(all, nullptr);
  ASSERT_EQ(arena_->chunk_count(), 1u) << "the poison must cover the chunk the ops allocate from";
  ASSERT_EQ(cudaMemset(all, 0xff, bytes), cudaSuccess);
  arena_->reset();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ctx_.stream = stream;
  auto t2 = [&](Buf& b, int64_t cols) { return cuda_tensor(b.dev.get(), dtype_, {rows_, cols}); };
  SableTensor xt = t2(x, k), gut = t2(gu, 2 * inter), actt = t2(act, inter), pt = t2(proj, k);
  SableTensor ht = t2(h, k), rt = t2(residual, k);
  SableTensor wgu = cuda_tensor(w_gu.dev.get(), dtype_, {2 * inter, k});
  SableTensor wo = cuda_tensor(w_o.dev.get(), dtype_, {k, k});
  SableTensor nw = cuda_tensor(norm_w.dev.get(), dtype_, {k});
  ops::LoraBatch lb = batch(row_slot);
  ops::cuda::LoraPendingScope scope;
  auto pending = [] {
    const ops::cuda::LoraPendingDelta* p = ops::cuda::lora_pending();
    return p != nullptr && p->active;
  };
  const SableOps* o = ops::cuda_ops();
  ctx_.lora = &lb;
  ASSERT_EQ(o->gemm(&ctx_, &xt, &wgu, nullptr, &gut), SABLE_OK);
  SableTensor parts[] = {cpp::narrow(gut, 1, 0, inter), cpp::narrow(gut, 1, inter, inter)};
  ASSERT_EQ(o->lora_stacked(&ctx_, kLayer, SABLE_LORA_GATE, 2, &xt, parts), SABLE_OK);
  EXPECT_EQ(pending(), fused) << "gate|up";
  ASSERT_EQ(o->act_mul(&ctx_, SABLE_ACT_SILU, &gut, &actt), SABLE_OK);
  EXPECT_FALSE(pending());
  ASSERT_EQ(o->gemm(&ctx_, &xt, &wo, nullptr, &pt), SABLE_OK);
  ASSERT_EQ(o->lora(&ctx_, kLayer, SABLE_LORA_O, &xt, &pt), SABLE_OK);
  EXPECT_EQ(pending(), fused) << "o";
  ASSERT_EQ(o->rms_norm(&ctx_, &pt, &rt, &nw, 1e-5f, 0.0f, &ht), SABLE_OK);
  EXPECT_FALSE(pending());
  for (Buf* b : {&gu, &act, &proj, &residual, &h}) {
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    outputs->push_back(b->fetch());
  }
  // o's delta followed by another op: it lands before the copy reads proj.
  ASSERT_EQ(o->gemm(&ctx_, &xt, &wo, nullptr, &pt), SABLE_OK);
  ASSERT_EQ(o->lora(&ctx_, kLayer, SABLE_LORA_O, &xt, &pt), SABLE_OK);
  ASSERT_EQ(o->copy(&ctx_, &pt, &ht), SABLE_OK);
  EXPECT_FALSE(pending());
  // q|k|v's delta into rope (SABLE_LORA_QKV_ROPE=0: added before it).
  SableTensor qkvt = t2(qkv, qkv_w);
  SableTensor wqkv = cuda_tensor(w_qkv.dev.get(), dtype_, {qkv_w, k});
  ASSERT_EQ(o->gemm(&ctx_, &xt, &wqkv, nullptr, &qkvt), SABLE_OK);
  SableTensor qkv_parts[] = {cpp::narrow(qkvt, 1, 0, nq), cpp::narrow(qkvt, 1, nq, nkv),
                             cpp::narrow(qkvt, 1, nq + nkv, nkv)};
  ASSERT_EQ(o->lora_stacked(&ctx_, kLayer, SABLE_LORA_Q, 3, &xt, qkv_parts), SABLE_OK);
  EXPECT_EQ(pending(), fused && ops::cuda::lora_qkv_into_rope()) << "q|k|v";
  SableTensor q3 = cpp::split_last(qkv_parts[0], qh, hd);
  SableTensor k3 = cpp::split_last(qkv_parts[1], kh, hd);
  SableTensor post = cuda_tensor(pos_dev.get(), SABLE_DTYPE_I32, {rows_});
  SableTensor cst = cuda_tensor(cs_dev.get(), SABLE_DTYPE_F32, {301, rot});
  ASSERT_EQ(o->rope(&ctx_, &q3, &k3, &post, &cst, rot, SABLE_ROPE_NEOX), SABLE_OK)
      << (ctx_.last_error ? ctx_.last_error : "");
  EXPECT_FALSE(pending());
  ctx_.lora = nullptr;
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  outputs->push_back(h.fetch());
  outputs->push_back(qkv.fetch());
  cudaStreamDestroy(stream);
}

TEST_F(CudaLoraOps, PendingDeltaLandsInTheConsumerWithTheSameBits) {
  if (!ops::cuda::lora_fork_enabled()) GTEST_SKIP() << "SABLE_LORA_FORK=0: nothing is forked";
  // fused with the memset, with the expand's zero fill, and with q|k|v's delta into rope (zero
  // fill on); each against `after`.
  std::vector<std::vector<float>> after, fused, zeroed, roped;
  for (int32_t rows : {24, 1}) {
    with_expand_mode("after", [&] { consumers(&after, false, rows); });
    if (HasFatalFailure()) return;
    for (auto [zero_fill, qkv_rope, got] :
         {std::tuple{"0", "0", &fused}, std::tuple{"1", "0", &zeroed},
          std::tuple{"1", "1", &roped}}) {
      with_env("SABLE_LORA_ZERO_FILL", zero_fill, [&] {
        with_env("SABLE_LORA_QKV_ROPE", qkv_rope,
                 [&] { with_expand_mode("fused", [&] { consumers(got, true, rows); }); });
      });
      if (HasFatalFailure()) return;
    }
  }
  const char* names[] = {"gate|up", "act", "proj", "residual", "norm", "copy", "q|k|v"};
  constexpr size_t kStages = std::size(names);
  for (auto [what, got] : {std::pair{"memset, ", &fused}, std::pair{"zero fill, ", &zeroed},
                           std::pair{"q|k|v into rope, ", &roped}}) {
    ASSERT_EQ(after.size(), got->size());
    for (size_t i = 0; i < after.size(); ++i) {
      const std::string where =
          std::string(what) + (i < kStages ? "24 rows, " : "1 row, ") + names[i % kStages];
      for (size_t e = 0; e < after[i].size(); ++e) {
        const float a = after[i][e], b = (*got)[i][e];
        // rope_qkv_delta rotates the same bf16 values as rope_kernel, but the compiler may
        // contract its products differently: one bf16 rounding apart at most.
        if (got == &roped && i % kStages == kStages - 1)
          ASSERT_NEAR(a, b, 1e-2f * (1.0f + std::fabs(a))) << where << " element " << e;
        else
          ASSERT_EQ(a, b) << where << " element " << e;
      }
    }
  }
}

// rope_qkv_delta (q|k|v's pending delta added inside rope): against a host emulation of the
// separate add (bf16(x + delta)) and rope_kernel's rotation: v columns and the columns past the
// rotary dims bit for bit, the rotated ones within one bf16 rounding (FMA contraction).
TEST(CudaRopeQkvDelta, AddsTheDeltaThenRotatesQAndK) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int32_t qh = 4, kh = 2, d = 16, rot = 12, tokens = 3;
  const int64_t width = (qh + 2 * kh) * d, ld = width + 8, qd = qh * d, kd = kh * d;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> qkv(static_cast<size_t>(tokens * ld));
  for (auto& v : qkv) v = to_bf16(nd(rng));
  std::vector<float> delta(static_cast<size_t>(tokens * (qd + 2 * kd)));
  for (float& v : delta) v = 0.1f * nd(rng);
  const std::vector<int32_t> pos = {0, 7, 300};
  const std::vector<float> cs = rope_table(301, rot);
  DeviceBuffer dq(qkv.size() * 2), dd(delta.size() * 4), dp(pos.size() * 4), dc(cs.size() * 4);
  dq.upload(qkv);
  dd.upload(delta);
  dp.upload(pos);
  dc.upload(cs);
  ASSERT_TRUE(ops::cuda::rope_qkv_delta(
      dq.get(), ld, qh, kh, static_cast<const float*>(dd.get()), SABLE_DTYPE_BF16, d, rot,
      static_cast<const int32_t*>(dp.get()), tokens, static_cast<const float*>(dc.get()),
      SABLE_ROPE_NEOX, nullptr));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto got = dq.download<uint16_t>(qkv.size());
  for (int32_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < ld; ++c) {
      const size_t at = static_cast<size_t>(t * ld + c);
      if (c >= width) {  // row padding: untouched
        ASSERT_EQ(got[at], qkv[at]) << "padding " << c;
        continue;
      }
      const int32_t h = static_cast<int32_t>(c / d), i = static_cast<int32_t>(c % d);
      const int64_t dcol = h < qh        ? t * qd + c
                           : h < qh + kh ? tokens * qd + t * kd + (c - qd)
                                         : tokens * (qd + kd) + t * kd + (c - qd - kd);
      auto added = [&](int32_t col) {
        const int64_t dc2 = dcol + (col - i);
        return from_bf16(to_bf16(from_bf16(qkv[static_cast<size_t>(t * ld + h * d + col)]) +
                                 delta[static_cast<size_t>(dc2)]));
      };
      float want = added(i);
      if (h < qh + kh && i < rot) {
        const int32_t p = i % (rot / 2);
        const float co = cs[static_cast<size_t>(pos[t] * rot + p)];
        const float si = cs[static_cast<size_t>(pos[t] * rot + rot / 2 + p)];
        const float x0 = added(p), x1 = added(p + rot / 2);
        want = i < rot / 2 ? x0 * co - x1 * si : x1 * co + x0 * si;
        EXPECT_NEAR(from_bf16(got[at]), want, 1e-2f * (1.0f + std::fabs(want))) << t << "," << c;
      } else {
        ASSERT_EQ(got[at], to_bf16(want)) << "token " << t << " column " << c;
      }
    }
}

}  // namespace sable::gputest::lora
