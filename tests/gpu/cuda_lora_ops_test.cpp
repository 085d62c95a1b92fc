// The CUDA `lora` / `lora_stacked` kernels (core/ops/cuda/lora_kernels.cu) against a plain double
// reference on random bf16 data: several ranks per slot (including one that is not a multiple of
// 8, an empty slot and garbage in A's rows past the rank), rows of one slot spread over the batch
// and over several tiles, a module without a pool, K that needs split partial sums and K that
// cannot take 16-byte loads, f32 and bf16. Rows without an adapter must come back bit-identical.
// Then one lora_stacked call captured in a CUDA graph is replayed with other adapters, ranks, row
// layouts and a pool that did not exist at capture: the step block is all the graph reads.
// The forked forms are in cuda_lora_fork_test.cpp. Part of cuda_ops_test (skipped without a GPU).
#include "tests/gpu/cuda_lora_fixture.h"

namespace sable::gputest::lora {
namespace {

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

// Seven K splits (K 3328 in splits of 512): the partials of a whole group of four splits and then
// three more are added by the reduce launch, with a rank-3 slot whose partials past its rank must
// not count.
TEST_F(CudaLoraOps, ExpandAddsManySplits) {
  init(2, 8, 6, SABLE_DTYPE_BF16);
  slot_rank_[0 * kC + SABLE_LORA_O] = 8;
  slot_rank_[1 * kC + SABLE_LORA_O] = 3;
  const int64_t k = 3328, n = 264;
  make_pool(kLayer, SABLE_LORA_O, k, n);
  Buf x = random(static_cast<size_t>(rows_ * k), 1.0f);
  Buf out = random(static_cast<size_t>(rows_ * n), 1.0f);
  check(x, k, out, n, SABLE_LORA_O, {n}, {1, 0, -1, 0, 1, 1});
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

}  // namespace
}  // namespace sable::gputest::lora
