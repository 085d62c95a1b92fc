// The routing and launch shape of the "flash" backend's plan (plugins/attention/flash/flash_plan.h),
// on the CPU: every token is served exactly once (by the decode kernel's list or one prefill
// tile), the per-token metadata is right, decode-only batches of one shape get one launch shape
// whatever their lengths (CUDA graph replays), split ranges cover every visible position, and an
// inconsistent batch is refused with a message.
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "plugins/attention/flash/flash_plan.h"

namespace sable::attention::flash {
namespace {

struct Batch {
  std::vector<int32_t> qo{0}, kv_indptr{0}, kv_indices, kv_lens;
  SableAttentionBatch view(bool decode_only) const {
    SableAttentionBatch b{};
    b.struct_size = sizeof(b);
    b.num_seqs = static_cast<int32_t>(kv_lens.size());
    b.num_tokens = qo.back();
    b.is_decode_only = decode_only ? 1 : 0;
    b.qo_indptr = qo.data();
    b.kv_indptr = kv_indptr.data();
    b.kv_indices = kv_indices.data();
    b.kv_lens = kv_lens.data();
    return b;
  }
};

// Sequences as (new tokens, kv_len); kv_len 0 = padding. Pages numbered in order, `page` tokens each.
Batch make_batch(const std::vector<std::pair<int32_t, int32_t>>& seqs, int32_t page) {
  Batch b;
  int32_t next_page = 0;
  for (auto [n, len] : seqs) {
    b.qo.push_back(b.qo.back() + n);
    for (int32_t p = 0; p < (len + page - 1) / page; ++p) b.kv_indices.push_back(next_page++);
    b.kv_indptr.push_back(static_cast<int32_t>(b.kv_indices.size()));
    b.kv_lens.push_back(len);
  }
  return b;
}

struct Planned {
  std::vector<int32_t> seq, begin, end, slot, decode;
  PlanArrays arrays;
  PlanShape shape;
};

Planned plan(const Batch& batch, bool decode_only, const PlanConfig& c) {
  const auto T = static_cast<size_t>(batch.qo.back());
  Planned p;
  for (auto* v : {&p.seq, &p.begin, &p.end, &p.slot, &p.decode}) v->assign(T, -7);
  p.arrays = PlanArrays{p.seq, p.begin, p.end, p.slot, p.decode, {}};
  p.shape = plan_batch(batch.view(decode_only), c, p.arrays);
  return p;
}

PlanConfig config(bool decode_kernel, int32_t window = 0) {
  PlanConfig c;
  c.page_size = 16;
  c.window = window;
  c.q_heads = 32;
  c.kv_heads = 8;
  c.head_dim = 128;
  c.num_sms = 132;
  c.split_rows = 256;
  c.decode_kernel = decode_kernel;
  return c;
}

void check_served_once(const Batch& batch, const Planned& p) {
  const int32_t T = batch.qo.back();
  std::vector<int32_t> served(static_cast<size_t>(T), 0);
  for (int32_t i = 0; i < p.shape.num_decode; ++i) {
    const int32_t t = p.decode[i];
    ++served[t];
    EXPECT_EQ(batch.qo[p.seq[t] + 1] - batch.qo[p.seq[t]], 1) << "decode kernel got a multi-token sequence";
  }
  for (const PrefillTile& tile : p.arrays.tiles)
    for (int32_t r = 0; r < tile.rows; ++r) ++served[tile.q0 + r];
  EXPECT_LE(static_cast<int32_t>(p.arrays.tiles.size()), p.shape.max_tiles);
  const bool fallback_only = p.shape.num_decode == 0 && !p.shape.prefill;  // per-token kernel
  for (int32_t t = 0; t < T; ++t) EXPECT_EQ(served[t], fallback_only ? 0 : 1) << "token " << t;
}

TEST(FlashPlan, MixedBatchesServeEveryTokenOnce) {
  const auto batch = make_batch({{1, 300}, {100, 100}, {1, 1}, {64, 500}, {1, 17}, {3, 3}}, 16);
  for (bool dk : {false, true}) {
    const Planned p = plan(batch, false, config(dk));
    ASSERT_EQ(p.shape.error, nullptr);
    EXPECT_TRUE(p.shape.prefill);
    EXPECT_EQ(p.shape.splits, 1);  // splits are for decode-only batches
    EXPECT_EQ(p.shape.num_decode, dk ? 3 : 0);
    check_served_once(batch, p);
  }
}

TEST(FlashPlan, PerTokenMetadata) {
  const auto batch = make_batch({{2, 40}, {1, 0}, {1, 17}}, 16);  // padding in the middle
  const Planned p = plan(batch, false, config(true, /*window=*/10));
  ASSERT_EQ(p.shape.error, nullptr);
  // Sequence 0: tokens at positions 38, 39 (pages 0..2), window 10.
  EXPECT_EQ(p.seq, (std::vector<int32_t>{0, 0, 1, 2}));
  EXPECT_EQ(p.end, (std::vector<int32_t>{39, 40, 0, 17}));
  EXPECT_EQ(p.begin, (std::vector<int32_t>{29, 30, 0, 7}));
  EXPECT_EQ(p.slot, (std::vector<int32_t>{2 * 16 + 6, 2 * 16 + 7, -1, 4 * 16 + 0}));
  EXPECT_EQ(p.shape.num_decode, 2);
  EXPECT_EQ(std::vector<int32_t>(p.decode.begin(), p.decode.begin() + 2), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(p.shape.chunk, decode_chunk(40, 1));
}

TEST(FlashPlan, DecodeBatchShapeIgnoresLengths) {
  std::mt19937 rng(11);
  for (bool dk : {false, true})
    for (int32_t bs : {1, 2, 8, 16, 64, 160, 256}) {
      PlanShape first{};
      for (int it = 0; it < 5; ++it) {
        std::vector<std::pair<int32_t, int32_t>> seqs;
        for (int32_t s = 0; s < bs; ++s)
          seqs.push_back({1, rng() % 7 == 0 ? 0 : 1 + static_cast<int32_t>(rng() % 5000)});  // 0: padding
        const auto batch = make_batch(seqs, 16);
        const Planned p = plan(batch, true, config(dk));
        ASSERT_EQ(p.shape.error, nullptr);
        check_served_once(batch, p);
        if (it == 0) {
          first = p.shape;
          EXPECT_EQ(p.shape.num_decode, dk ? bs : 0);
          EXPECT_GE(p.shape.splits, 1);
          EXPECT_LE(p.shape.splits, kMaxSplits);
        }
        EXPECT_EQ(p.shape.splits, first.splits) << "bs " << bs;
        EXPECT_EQ(p.shape.prefill, first.prefill) << "bs " << bs;
        EXPECT_EQ(p.shape.max_tiles, first.max_tiles) << "bs " << bs;
        EXPECT_EQ(p.shape.num_decode, first.num_decode) << "bs " << bs;
        // The device-side chunk covers every token's range with the planned splits.
        for (size_t t = 0; t < seqs.size(); ++t)
          EXPECT_GE(int64_t(p.shape.chunk) * p.shape.splits, p.end[t] - p.begin[t]);
      }
    }
}

// Small decode-only batches take the deep pipeline (deep_pairs): its stage count is part of the
// launch shape (the same for every length), and its splits are at least kDeepChunk positions, so
// a context up to 384 positions is one split that writes its output directly.
TEST(FlashPlan, SmallDecodeBatchesTakeTheDeepPipeline) {
  PlanConfig c = config(true);
  c.deep_pairs = 64;  // batches of up to 8 tokens at 8 KV heads
  for (int32_t bs : {1, 8, 9, 64}) {
    for (int32_t len : {1, 130, 384, 385, 5000}) {
      std::vector<std::pair<int32_t, int32_t>> seqs(static_cast<size_t>(bs), {1, len});
      const auto batch = make_batch(seqs, 16);
      const Planned p = plan(batch, true, c);
      ASSERT_EQ(p.shape.error, nullptr);
      check_served_once(batch, p);
      const bool deep = bs * c.kv_heads <= c.deep_pairs;
      EXPECT_EQ(p.shape.decode_stages, deep ? kDeepStages : 2) << bs << " x " << len;
      if (deep) {
        EXPECT_GE(p.shape.chunk, kDeepChunk);
        if (len <= kDeepChunk) EXPECT_EQ(decode_used_splits(0, len, p.shape.chunk), 1);
      }
      EXPECT_GE(int64_t(p.shape.chunk) * p.shape.splits, len);
    }
  }
  c.deep_pairs = 0;  // off
  const Planned p = plan(make_batch({{1, 130}}, 16), true, c);
  EXPECT_EQ(p.shape.decode_stages, 2);
}

// Two-stage decode batches give each split up to three tiles where the CTAs that hold positions
// still fill ~a wave (132 SMs x 3 CTAs at D 128), else one: the shapes measured in bench/NOTES.md
// v23 (8B, H100), each planned as its fastest measured floor. SABLE_DECODE_MIN_CHUNK fixes it.
TEST(FlashPlan, TwoStageDecodeSplitsTakeThreeTilesWhileAWaveStaysFull) {
  struct Shape {
    int32_t batch, len, want_chunk;
  };
  for (const Shape& s : {Shape{64, 192, 192},    // 512 pairs: one split of three tiles each
                         Shape{16, 576, 192},    // 128 pairs x 3 splits = 384 CTAs (97 % of a wave)
                         Shape{4, 1024, 64},     // 32 pairs: three tiles would leave half a wave
                         Shape{64, 4096, 0}}) {  // long splits: the even share, above every floor
    std::vector<std::pair<int32_t, int32_t>> seqs(static_cast<size_t>(s.batch), {1, s.len});
    const auto batch = make_batch(seqs, 16);
    const Planned p = plan(batch, true, config(true));
    ASSERT_EQ(p.shape.error, nullptr);
    check_served_once(batch, p);
    ASSERT_EQ(p.shape.decode_stages, 2);
    const int32_t even = (s.len + p.shape.splits - 1) / p.shape.splits;
    EXPECT_EQ(p.shape.chunk, s.want_chunk > 0 ? s.want_chunk : even) << s.batch << " x " << s.len;
    EXPECT_GE(int64_t(p.shape.chunk) * p.shape.splits, s.len);
    PlanConfig fixed = config(true);
    fixed.decode_min_chunk = kDecodeN;  // the one-tile floor before v23
    EXPECT_EQ(plan(batch, true, fixed).shape.chunk, std::max(even, kDecodeN));
  }
  // Shorter than the floor: one split holds the whole context.
  const Planned p = plan(make_batch(std::vector<std::pair<int32_t, int32_t>>(64, {1, 100}), 16),
                         true, config(true));
  EXPECT_EQ(p.shape.chunk, 3 * kDecodeN);
  EXPECT_EQ(decode_used_splits(0, 100, p.shape.chunk), 1);
}

TEST(FlashPlan, LargeDecodeBatchesWithoutTheDecodeKernelTakeThePrefillKernel) {
  std::vector<std::pair<int32_t, int32_t>> seqs(16, {1, 300});
  EXPECT_TRUE(plan(make_batch(seqs, 16), true, config(false)).shape.prefill);  // 16 x 32 >= 264
  EXPECT_FALSE(plan(make_batch(seqs, 16), true, config(true)).shape.prefill);
  seqs.resize(2);
  EXPECT_FALSE(plan(make_batch(seqs, 16), true, config(false)).shape.prefill);
}

TEST(FlashPlan, InconsistentBatchesAreRefused) {
  auto batch = make_batch({{5, 3}}, 16);  // more new tokens than the sequence holds
  EXPECT_STREQ(plan(batch, false, config(true)).shape.error, "flash: kv_len < new tokens");
  batch = make_batch({{1, 40}}, 16);
  batch.kv_indices.pop_back();  // 40 tokens need 3 pages of 16
  batch.kv_indptr.back() = 2;
  EXPECT_STREQ(plan(batch, true, config(true)).shape.error, "flash: too few pages for kv_len");
}

}  // namespace
}  // namespace sable::attention::flash
