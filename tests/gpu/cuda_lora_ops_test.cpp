// The CUDA `lora` / `lora_stacked` kernels (core/ops/cuda/lora_kernels.cu) against a plain double
// reference on random bf16 data: several ranks per slot (including one that is not a multiple of
// 8, an empty slot and garbage in A's rows past the rank), rows of one slot spread over the batch
// and over several tiles, a module without a pool, K that needs split partial sums and K that
// cannot take 16-byte loads, f32 and bf16. Rows without an adapter must come back bit-identical.
// Then one lora_stacked call captured in a CUDA graph is replayed with other adapters, ranks, row
// layouts and a pool that did not exist at capture: the step block is all the graph reads. Last,
// the shrink forked beside the base projection's GEMM (lora_fork.h), eager and captured, and not
// forked when another op ran between the GEMM and the LoRA call; and the expand forked with it
// (SABLE_LORA_EXPAND=side), which must give the same bits; and its delta left to the rms_norm or
// act_mul after it (fused, the default), the same bits again.
// Part of cuda_ops_test (skipped without a GPU).
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cuda/cuda_ops.h"
#include "core/ops/cuda/kernels.h"
#include "core/ops/cuda/lora_fork.h"
#include "core/ops/cuda/lora_pending.h"
#include "core/ops/lora_step_block.h"
#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {
namespace {

constexpr int32_t kC = SABLE_LORA_MODULE_COUNT;
constexpr int32_t kLayers = 2, kLayer = 1;  // the calls use layer 1; layer 0 holds other pools
using ops::LoraWeights;

// Host values (bf16-representable when the device dtype is bf16) and their device copy.
struct Buf {
  std::vector<float> host;
  DeviceBuffer dev;
  int32_t dtype = SABLE_DTYPE_BF16;
  void upload() {
    dev = DeviceBuffer(host.size() * (dtype == SABLE_DTYPE_F32 ? 4 : 2));
    sync();
  }
  void sync() {  // host -> device again (same size)
    if (dtype == SABLE_DTYPE_F32) return dev.upload(host);
    std::vector<uint16_t> h(host.size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = to_bf16(host[i]);
    dev.upload(h);
  }
  std::vector<float> fetch() const {
    if (dtype == SABLE_DTYPE_F32) return dev.download<float>(host.size());
    const auto h = dev.download<uint16_t>(host.size());
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) f[i] = from_bf16(h[i]);
    return f;
  }
};

class CudaLoraOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
    arena_ = std::make_unique<ops::Arena>(std::make_unique<ops::CudaBacking>(), 64 << 20);
    ctx_.device_type = SABLE_DEVICE_CUDA;
    ctx_.arena = arena_.get();
  }

  float rnd(float scale) {
    const float v = nd_(rng_) * scale;
    return dtype_ == SABLE_DTYPE_F32 ? v : from_bf16(to_bf16(v));
  }
  Buf random(size_t n, float scale) {
    Buf b;
    b.dtype = dtype_;
    b.host.resize(n);
    for (float& v : b.host) v = rnd(scale);
    b.upload();
    return b;
  }

  // A pool [S, R, K] / [S, N, R] for (layer, module), random everywhere: A's rows and B's
  // columns past a slot's rank are garbage the kernels must not use.
  void make_pool(int32_t layer, int32_t module, int64_t k, int64_t n) {
    Buf a = random(static_cast<size_t>(slots_ * r_ * k), 1.0f / std::sqrt(float(k)));
    Buf b = random(static_cast<size_t>(slots_ * n * r_), 0.5f);
    const size_t at = static_cast<size_t>(layer * kC + module);
    weights_[at] = {a.dev.get(), b.dev.get(), k, n};
    pools_a_[at] = std::move(a);
    pools_b_[at] = std::move(b);
  }
  int32_t rank(int32_t slot, int32_t module) const {
    return slot_rank_[static_cast<size_t>(slot * kC + module)];
  }

  void init(int32_t slots, int32_t r_stride, int32_t rows, int32_t dtype) {
    slots_ = slots;
    r_ = r_stride;
    rows_ = rows;
    dtype_ = dtype;
    weights_.assign(kLayers * kC, {});
    pools_a_.clear();
    pools_b_.clear();
    pools_a_.resize(kLayers * kC);
    pools_b_.resize(kLayers * kC);
    slot_rank_.assign(static_cast<size_t>(slots * kC), 0);
    block_ = std::make_unique<ops::LoraStepBlock>(kLayers, slots, rows);
    block_dev_ = DeviceBuffer(block_->capacity_bytes());
  }

  // Writes the step block for `row_slot` and uploads it (what the executor does per forward).
  ops::LoraBatch batch(const std::vector<int32_t>& row_slot) {
    const size_t bytes = block_->fill(weights_, slot_rank_, row_slot);
    EXPECT_EQ(cudaMemcpy(block_dev_.get(), block_->host(), bytes, cudaMemcpyHostToDevice),
              cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // a pageable copy may return before its DMA
    ops::LoraBatch lb;
    lb.num_layers = kLayers;
    lb.num_slots = slots_;
    lb.max_rank = r_;
    lb.dtype = dtype_;
    lb.weights = weights_.data();
    lb.slot_rank = slot_rank_.data();
    lb.num_tokens = rows_;
    lb.device = block_->view(block_dev_.get());
    lb.step_host = block_->host();
    lb.step_device = block_dev_.get();
    lb.step_bytes = bytes;
    return lb;
  }

  // out (host values: the base projection) plus every adapter delta of `modules` at layer kLayer,
  // in double; out is [T, width] with module i's columns at col0[i].
  std::vector<float> reference(const Buf& x, int64_t k, const Buf& out, int64_t width,
                               const std::vector<int32_t>& modules, const std::vector<int64_t>& col0,
                               const std::vector<int32_t>& row_slot) const {
    std::vector<float> ref = out.host;
    for (int32_t t = 0; t < static_cast<int32_t>(row_slot.size()); ++t) {
      const int32_t s = row_slot[static_cast<size_t>(t)];
      if (s < 0) continue;
      for (size_t i = 0; i < modules.size(); ++i) {
        const size_t at = static_cast<size_t>(kLayer * kC + modules[i]);
        const LoraWeights& w = weights_[at];
        const int32_t r = rank(s, modules[i]);
        if (w.a == nullptr || r == 0) continue;
        std::vector<double> shrunk(static_cast<size_t>(r), 0.0);
        for (int32_t j = 0; j < r; ++j)
          for (int64_t e = 0; e < k; ++e)
            shrunk[j] += double(x.host[static_cast<size_t>(t * k + e)]) *
                         pools_a_[at].host[static_cast<size_t>((s * r_ + j) * k + e)];
        for (int64_t c = 0; c < w.n; ++c) {
          double d = 0;
          for (int32_t j = 0; j < r; ++j)
            d += shrunk[j] * pools_b_[at].host[static_cast<size_t>((s * w.n + c) * r_ + j)];
          float& o = ref[static_cast<size_t>(t * width + col0[i] + c)];
          o = static_cast<float>(o + d);
        }
      }
    }
    return ref;
  }

  // Runs lora_stacked on views of `out` and checks it against the reference.
  void check(const Buf& x, int64_t k, Buf& out, int64_t width, int32_t first,
             const std::vector<int64_t>& n, const std::vector<int32_t>& row_slot, bool run = true) {
    std::vector<int32_t> modules;
    std::vector<int64_t> col0;
    int64_t c = 0;
    for (size_t i = 0; i < n.size(); ++i) {
      modules.push_back(first + static_cast<int32_t>(i));
      col0.push_back(c);
      c += n[i];
    }
    if (run) {
      ops::LoraBatch lb = batch(row_slot);
      ctx_.lora = &lb;
      launch(x, k, out, width, first, n);
      ctx_.lora = nullptr;
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> got = out.fetch();
    const std::vector<float> want = reference(x, k, out, width, modules, col0, row_slot);
    EXPECT_LT(rel_l2(got, want), dtype_ == SABLE_DTYPE_F32 ? 1e-5 : 1e-2);
    for (size_t t = 0; t < row_slot.size(); ++t)
      if (row_slot[t] < 0)
        for (int64_t e = 0; e < width; ++e)
          ASSERT_EQ(got[t * width + e], out.host[t * width + e]) << "row " << t << " has no adapter";
  }

  void forked_beside_gemm(std::vector<std::vector<float>>* outputs);
  void consumers(std::vector<std::vector<float>>* outputs, bool fused, int32_t rows = 24);

  void launch(const Buf& x, int64_t k, Buf& out, int64_t width, int32_t first,
              const std::vector<int64_t>& n) {
    SableTensor xt = cuda_tensor(x.dev.get(), dtype_, {rows_, k});
    std::vector<SableTensor> outs;
    int64_t c = 0;
    for (int64_t ni : n) {
      SableTensor full = cuda_tensor(out.dev.get(), dtype_, {rows_, width});
      outs.push_back(cpp::narrow(full, 1, c, ni));
      c += ni;
    }
    ASSERT_EQ(ops::cuda_ops()->lora_stacked(&ctx_, kLayer, first, static_cast<int32_t>(n.size()),
                                            &xt, outs.data()),
              SABLE_OK)
        << (ctx_.last_error ? ctx_.last_error : "");
  }

  std::unique_ptr<ops::Arena> arena_;
  SableOpsContext ctx_;
  std::mt19937 rng_{17};
  std::normal_distribution<float> nd_{0.0f, 1.0f};
  int32_t slots_ = 0, r_ = 0, rows_ = 0, dtype_ = SABLE_DTYPE_BF16;
  std::vector<LoraWeights> weights_;
  std::vector<Buf> pools_a_, pools_b_;
  std::vector<int32_t> slot_rank_;
  std::unique_ptr<ops::LoraStepBlock> block_;
  DeviceBuffer block_dev_;
};

TEST_F(CudaLoraOps, StackedQkvMatchesReference) {
  init(/*slots=*/4, /*r_stride=*/16, /*rows=*/21, SABLE_DTYPE_BF16);
  // slot 0 rank 16, slot 1 rank 5 (q, v only), slot 2 empty, slot 3 rank 8.
  for (int32_t m : {SABLE_LORA_Q, SABLE_LORA_K, SABLE_LORA_V}) {
    slot_rank_[0 * kC + m] = 16;
    slot_rank_[1 * kC + m] = m == SABLE_LORA_K ? 0 : 5;
    slot_rank_[3 * kC + m] = 8;
  }
  const int64_t k = 256, nq = 128, nkv = 64, width = nq + 2 * nkv;
  for (int32_t layer = 0; layer < kLayers; ++layer) {
    make_pool(layer, SABLE_LORA_Q, k, nq);
    make_pool(layer, SABLE_LORA_K, k, nkv);
    make_pool(layer, SABLE_LORA_V, k, nkv);
  }
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf out = random(static_cast<size_t>(rows_ * width), 1.0f);
  // Slot 0 has 11 rows in two tiles, spread over the batch; base rows between them.
  const std::vector<int32_t> rows = {0, 0, -1, 1, 0, 3, 0, 0, -1, 1, 0, 0,
                                     0, 3, 0, 0, -1, 2, 0, 1, -1};
  check(x, k, out, width, SABLE_LORA_Q, {nq, nkv, nkv}, rows);
}

TEST_F(CudaLoraOps, GateUpWithoutOnePoolAndSplitK) {
  init(3, 8, 5, SABLE_DTYPE_BF16);
  for (int32_t m : {SABLE_LORA_GATE, SABLE_LORA_UP}) slot_rank_[1 * kC + m] = 8;
  slot_rank_[2 * kC + SABLE_LORA_GATE] = 3;
  const int64_t k = 1536, n = 300;  // three K splits; 300 columns: a partial expand block
  make_pool(kLayer, SABLE_LORA_GATE, k, n);  // no pool for up: its columns stay as they were
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf out = random(static_cast<size_t>(rows_ * 2 * n), 1.0f);
  check(x, k, out, 2 * n, SABLE_LORA_GATE, {n, n}, {2, 1, -1, 1, 2});
  const std::vector<float> got = out.fetch();
  for (int64_t t = 0; t < rows_; ++t)
    for (int64_t c = n; c < 2 * n; ++c)
      ASSERT_EQ(got[t * 2 * n + c], out.host[t * 2 * n + c]) << "up has no pool";
}

TEST_F(CudaLoraOps, ScalarLoadsAndF32) {
  for (int32_t dtype : {SABLE_DTYPE_BF16, SABLE_DTYPE_F32}) {
    init(2, 8, 9, dtype);
    slot_rank_[0 * kC + SABLE_LORA_DOWN] = 7;
    slot_rank_[1 * kC + SABLE_LORA_DOWN] = 2;
    const int64_t k = 100, n = 40;  // bf16: K % 8 != 0, one element per load (f32: 4)
    make_pool(kLayer, SABLE_LORA_DOWN, k, n);
    Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
    Buf out = random(static_cast<size_t>(rows_ * n), 1.0f);
    check(x, k, out, n, SABLE_LORA_DOWN, {n}, {1, 0, 0, -1, 1, 0, 0, 0, 0});
  }
}

// A prefill-sized batch: more tiles than the expand has tile groups, so a block takes several
// tiles (and loads the next tile's outputs before it stores this one's).
TEST_F(CudaLoraOps, ManyTilesShareAnExpandBlock) {
  init(/*slots=*/4, /*r_stride=*/16, /*rows=*/2400, SABLE_DTYPE_BF16);
  slot_rank_[0 * kC + SABLE_LORA_O] = 16;
  slot_rank_[1 * kC + SABLE_LORA_O] = 3;
  slot_rank_[3 * kC + SABLE_LORA_O] = 12;
  const int64_t k = 128, n = 96;
  make_pool(kLayer, SABLE_LORA_O, k, n);
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf out = random(static_cast<size_t>(rows_ * n), 1.0f);
  std::vector<int32_t> row_slot(static_cast<size_t>(rows_));
  std::uniform_int_distribution<int32_t> pick(-1, 3);
  for (int32_t& v : row_slot) v = pick(rng_);
  check(x, k, out, n, SABLE_LORA_O, {n}, row_slot);
}

// A forward makes one call per layer and projection group after a single upload of the step block:
// calls back to back must each add their delta once, with nothing left over from the call before
// (bench/NOTES.md v11 tried a one-launch variant that kept block counters in the step block).
TEST_F(CudaLoraOps, BackToBackCallsReuseTheCounters) {
  init(/*slots=*/3, /*r_stride=*/16, /*rows=*/40, SABLE_DTYPE_F32);
  for (int32_t m : {SABLE_LORA_GATE, SABLE_LORA_UP}) {
    slot_rank_[0 * kC + m] = 16;
    slot_rank_[2 * kC + m] = 7;
  }
  const int64_t k = 2048, n = 520;
  make_pool(kLayer, SABLE_LORA_GATE, k, n);
  make_pool(kLayer, SABLE_LORA_UP, k, n);
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf out = random(static_cast<size_t>(rows_ * 2 * n), 1.0f);
  std::vector<int32_t> row_slot(static_cast<size_t>(rows_));
  for (int32_t t = 0; t < rows_; ++t) row_slot[static_cast<size_t>(t)] = t % 4 == 3 ? -1 : t % 3;
  ops::LoraBatch lb = batch(row_slot);
  ctx_.lora = &lb;
  Buf base;  // host values only: the expected out after each call
  base.dtype = dtype_;
  base.host = out.host;
  for (int call = 0; call < 5; ++call) {
    launch(x, k, out, 2 * n, SABLE_LORA_GATE, {n, n});
    base.host = reference(x, k, base, 2 * n, {SABLE_LORA_GATE, SABLE_LORA_UP}, {0, n}, row_slot);
  }
  ctx_.lora = nullptr;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_LT(rel_l2(out.fetch(), base.host), 1e-5);
}

TEST_F(CudaLoraOps, CapturedGraphReplaysOtherAdapters) {
  init(4, 16, 16, SABLE_DTYPE_BF16);
  const int64_t k = 512, nq = 64, nkv = 32, width = nq + 2 * nkv;
  for (int32_t m : {SABLE_LORA_Q, SABLE_LORA_K}) slot_rank_[0 * kC + m] = 16;
  make_pool(kLayer, SABLE_LORA_Q, k, nq);
  make_pool(kLayer, SABLE_LORA_K, k, nkv);  // v has no pool at capture time
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf out = random(static_cast<size_t>(rows_ * width), 1.0f);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ctx_.stream = stream;
  std::vector<int32_t> rows(16, 0);
  ops::LoraBatch lb = batch(rows);
  ctx_.lora = &lb;
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  launch(x, k, out, width, SABLE_LORA_Q, {nq, nkv, nkv});
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphDestroy(graph);
  ctx_.lora = nullptr;  // the replays read only the device step block
  auto replay = [&](const std::vector<int32_t>& row_slot) {
    out.sync();  // the base projection again
    batch(row_slot);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    check(x, k, out, width, SABLE_LORA_Q, {nq, nkv, nkv}, row_slot, /*run=*/false);
  };
  replay(rows);  // the capture's own batch: one adapter on every row
  // Other adapters in other slots with other ranks, a base row, and v's pool created since.
  for (int32_t m : {SABLE_LORA_Q, SABLE_LORA_K, SABLE_LORA_V}) {
    slot_rank_[1 * kC + m] = 9;
    slot_rank_[3 * kC + m] = m == SABLE_LORA_K ? 0 : 16;
  }
  make_pool(kLayer, SABLE_LORA_V, k, nkv);
  replay({3, 1, 1, -1, 0, 3, 3, 1, 0, 0, 1, 3, 1, 1, 1, 3});
  // A smaller batch padded to the graph's 16 rows: the padding rows have no slot.
  slot_rank_[0 * kC + SABLE_LORA_Q] = 4;
  replay({0, 1, 0, -1, 3, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1});
  cudaGraphExecDestroy(exec);
  cudaStreamDestroy(stream);
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
        d += double(x.host[static_cast<size_t>(t * k + e)]) * w.host[static_cast<size_t>(c * k + e)];
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

// Runs `body` on a new thread with SABLE_LORA_EXPAND=`mode` (read per thread), then puts the
// variable back as it was.
void with_expand_mode(const char* mode, const std::function<void()>& body) {
  const char* old = std::getenv("SABLE_LORA_EXPAND");
  const std::string saved = old != nullptr ? old : "";
  setenv("SABLE_LORA_EXPAND", mode, 1);
  std::thread(body).join();
  if (old != nullptr)
    setenv("SABLE_LORA_EXPAND", saved.c_str(), 1);
  else
    unsetenv("SABLE_LORA_EXPAND");
}

// The expand forked with the shrink writes fp32 deltas and a kernel after the join adds them
// (`side`; `fused` without a pending scope does the same), so every stage must end with the same
// bits as the expand run after the GEMM (`after`, the path before v18).
TEST_F(CudaLoraOps, ExpandBesideTheBaseGemmGivesTheSameBits) {
  std::vector<std::vector<float>> after, side, fused;
  with_expand_mode("after", [&] { forked_beside_gemm(&after); });
  if (HasFatalFailure()) return;
  with_expand_mode("side", [&] { forked_beside_gemm(&side); });
  with_expand_mode("fused", [&] { forked_beside_gemm(&fused); });
  ASSERT_EQ(after.size(), side.size());
  ASSERT_EQ(after.size(), fused.size());
  for (size_t i = 0; i < after.size(); ++i)
    for (size_t e = 0; e < after[i].size(); ++e) {
      ASSERT_EQ(after[i][e], side[i][e]) << "side, stage " << i << " element " << e;
      ASSERT_EQ(after[i][e], fused[i][e]) << "fused, stage " << i << " element " << e;
    }
}

// The decoder's consumers after a LoRA call: gate|up's output into act_mul, o's into the
// rms_norm that adds it to the residual, and o's again into another op (a copy). In the fused
// mode (the default) the first two add the pending delta in their own kernels and the copy finds
// it added first; every output must have the `after` path's bits.
void CudaLoraOps::consumers(std::vector<std::vector<float>>* outputs, bool fused, int32_t rows) {
  rng_.seed(23);
  init(/*slots=*/3, /*r_stride=*/16, rows, SABLE_DTYPE_BF16);
  for (int32_t m : {SABLE_LORA_GATE, SABLE_LORA_UP, SABLE_LORA_O}) {
    slot_rank_[0 * kC + m] = 16;
    slot_rank_[2 * kC + m] = m == SABLE_LORA_UP ? 0 : 5;
  }
  const int64_t k = 512, inter = 384;
  make_pool(kLayer, SABLE_LORA_GATE, k, inter);
  make_pool(kLayer, SABLE_LORA_UP, k, inter);
  make_pool(kLayer, SABLE_LORA_O, k, k);
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
  ctx_.lora = nullptr;
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  outputs->push_back(h.fetch());
  cudaStreamDestroy(stream);
}

TEST_F(CudaLoraOps, PendingDeltaLandsInTheConsumerWithTheSameBits) {
  if (!ops::cuda::lora_fork_enabled()) GTEST_SKIP() << "SABLE_LORA_FORK=0: nothing is forked";
  std::vector<std::vector<float>> after, fused;
  for (int32_t rows : {24, 1}) {
    with_expand_mode("after", [&] { consumers(&after, false, rows); });
    if (HasFatalFailure()) return;
    with_expand_mode("fused", [&] { consumers(&fused, true, rows); });
  }
  ASSERT_EQ(after.size(), fused.size());
  const char* names[] = {"gate|up", "act", "proj", "residual", "norm", "copy"};
  for (size_t i = 0; i < after.size(); ++i)
    for (size_t e = 0; e < after[i].size(); ++e)
      ASSERT_EQ(after[i][e], fused[i][e])
          << (i < 6 ? "24 rows, " : "1 row, ") << names[i % 6] << " element " << e;
}

// SABLE_LORA_EXPAND=one: the forked delta as one launch (lora_delta_kernel.cu). Its sums are
// accumulated in another order, so it is held to the double reference (forked_beside_gemm's
// checks) and, through the consumers, to the `after` path within bf16 rounding.
TEST_F(CudaLoraOps, OneLaunchDeltaMatchesReference) {
  if (!ops::cuda::lora_fork_enabled()) GTEST_SKIP() << "SABLE_LORA_FORK=0: nothing is forked";
  std::vector<std::vector<float>> forked;
  with_expand_mode("one", [&] { forked_beside_gemm(&forked); });
  if (HasFatalFailure()) return;
  std::vector<std::vector<float>> after, one;
  with_expand_mode("after", [&] { consumers(&after, false); });
  with_expand_mode("one", [&] { consumers(&one, true); });
  ASSERT_EQ(after.size(), one.size());
  const char* names[] = {"gate|up", "act", "proj", "residual", "norm", "copy"};
  for (size_t i = 0; i < after.size(); ++i) EXPECT_LT(rel_l2(one[i], after[i]), 1e-2) << names[i];
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
  std::vector<float> cs(static_cast<size_t>(301 * rot));
  for (int32_t p = 0; p <= 300; ++p)
    for (int32_t i = 0; i < rot / 2; ++i) {
      const float a = p * std::pow(10000.0f, -2.0f * i / rot);
      cs[static_cast<size_t>(p * rot + i)] = std::cos(a);
      cs[static_cast<size_t>(p * rot + rot / 2 + i)] = std::sin(a);
    }
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

}  // namespace
}  // namespace sable::gputest
