// The startup warm-up's shapes (core/runner/warm_up.h): the text batch that sizes the activation
// arena before the KV pool is sized (every sequence within the context, image rows for a
// vision-language model), and the vision-tower call of exactly the per-call patch budget. The
// CUDA run of these shapes is covered by tests/gpu/vl_golden_gpu_test.cpp.
#include "core/runner/warm_up.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace sable::runner {
namespace {

using V = std::vector<int32_t>;

TEST(WarmUpBatch, FillsMaxBatchTokensInSequencesNoLongerThanTheContext) {
  // 10 tokens, context 4, pages of 2: sequences of 4, 4 and 2 tokens over their own pages.
  const WarmUpBatch w = warm_up_batch(10, 4, 8, 2, false);
  EXPECT_EQ(w.token_ids.size(), 10u);
  EXPECT_EQ(w.positions, (V{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}));
  EXPECT_EQ(w.qo_indptr, (V{0, 4, 8, 10}));
  EXPECT_EQ(w.kv_lens, (V{4, 4, 2}));
  EXPECT_EQ(w.output_rows, (V{3, 7, 9}));
  EXPECT_EQ(w.kv_indptr, (V{0, 2, 4, 5}));
  EXPECT_EQ(w.kv_indices, (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(w.num_pages, 6);
  EXPECT_TRUE(w.mrope.empty());
  EXPECT_TRUE(w.embed_spans.empty());
  EXPECT_EQ(w.embed_rows, 0);
}

TEST(WarmUpBatch, MaxSeqsBoundsTheBatchAsTheSchedulerDoes) {
  // No forward can hold more than max_seqs sequences of a context each.
  const WarmUpBatch w = warm_up_batch(100, 10, 3, 4, false);
  EXPECT_EQ(w.kv_lens, (V{10, 10, 10}));
  EXPECT_EQ(w.num_pages, 9);
  // A context longer than the batch: one sequence of the whole batch.
  const WarmUpBatch one = warm_up_batch(6, 4096, 8, 1, false);
  EXPECT_EQ(one.kv_lens, (V{6}));
}

TEST(WarmUpBatch, ImageRowsCarryMropePositionsAndEmbeddingsEverywhere) {
  const WarmUpBatch w = warm_up_batch(5, 3, 8, 1, true);
  // [3, T]: each axis is the plain position (the decoder's M-RoPE path runs on every row).
  EXPECT_EQ(w.mrope, (V{0, 1, 2, 0, 1, 0, 1, 2, 0, 1, 0, 1, 2, 0, 1}));
  // One span per sequence over all its rows, embedding rows in batch order.
  EXPECT_EQ(w.embed_spans, (V{0, 3, 0, 3, 2, 3}));
  EXPECT_EQ(w.embed_rows, 5);
}

TEST(WarmUpBatch, RefusesEmptyLimits) {
  EXPECT_THROW(warm_up_batch(0, 4, 1, 1, false), std::invalid_argument);
  EXPECT_THROW(warm_up_batch(4, 4, 0, 1, false), std::invalid_argument);
  EXPECT_THROW(warm_up_batch(4, 4, 1, 0, false), std::invalid_argument);
}

TEST(VisionWarmUpGrid, OneImageOfExactlyTheBudgetAsSquareAsItGoes) {
  // The default Qwen2.5-VL budget: max_pixels 28·28·1280 -> 1280 merged tokens, 5120 patches.
  EXPECT_EQ(vision_warm_up_grid(5120, 2), (V{1, 64, 80}));
  EXPECT_EQ(vision_warm_up_grid(4, 2), (V{1, 2, 2}));
  EXPECT_EQ(vision_warm_up_grid(64 * 4, 2), (V{1, 16, 16}));
  // A prime number of merged tokens: one row of them.
  EXPECT_EQ(vision_warm_up_grid(7 * 4, 2), (V{1, 2, 14}));
  EXPECT_EQ(vision_warm_up_grid(6 * 9, 3), (V{1, 6, 9}));
  for (const int64_t patches : {4, 28, 5120, 65536, 4 * 9973}) {
    const V g = vision_warm_up_grid(patches, 2);
    EXPECT_EQ(int64_t{g[0]} * g[1] * g[2], patches);
    EXPECT_EQ(g[1] % 2, 0);
    EXPECT_EQ(g[2] % 2, 0);
    EXPECT_LE(g[1], g[2]);
  }
}

TEST(VisionWarmUpGrid, RefusesCountsThatAreNotWholeMergedTokens) {
  EXPECT_THROW(vision_warm_up_grid(0, 2), std::invalid_argument);
  EXPECT_THROW(vision_warm_up_grid(6, 2), std::invalid_argument);
  EXPECT_THROW(vision_warm_up_grid(8, 0), std::invalid_argument);
}

}  // namespace
}  // namespace sable::runner
