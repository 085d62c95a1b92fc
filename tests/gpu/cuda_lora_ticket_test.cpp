// The shrink's ticket form (SABLE_LORA_TICKET=1, lora_kernels.cu: the last of a tile's shrink
// blocks sums its K splits, no reduce launch) against the shrink and reduce launches: the same
// fp32 deltas bit for bit after lora_expand_to_delta, on decode shapes with many K splits (a whole
// group of four and a rest), ranks below the stride, a slot without rank, a module without a pool,
// rows without an adapter, scalar loads and f32. Each case runs the ticket form three times on one
// step block: a ticket left anywhere but zero would stop a later launch's reduce (its last block
// would never see the count), so the later runs match too only if every launch resets them. Part
// of cuda_ops_test (skipped without a GPU).
#include <string>
#include <vector>

#include "tests/gpu/cuda_lora_fixture.h"

namespace sable::gputest::lora {
namespace {

struct Case {
  const char* name;
  int32_t dtype, slots, r_stride, rows;
  int64_t k;
  int32_t first;
  std::vector<int64_t> n;
  bool pool_for_last = true;  // false: the last module has no pool
};

class CudaLoraTicket : public CudaLoraOps {
 protected:
  // The deltas of shrink (tickets on or off) then expand_to_delta, NaN-poisoned first.
  std::vector<uint32_t> deltas(const ops::cuda::LoraLaunch& l, int32_t dtype, const char* ticket) {
    const size_t floats = ops::cuda::lora_delta_floats(l);
    DeviceBuffer scratch(std::max<size_t>(ops::cuda::lora_scratch_floats(l, dtype), 1) * 4);
    DeviceBuffer delta(floats * 4);
    EXPECT_EQ(cudaMemset(delta.get(), 0xff, floats * 4), cudaSuccess);
    ops::cuda::LoraLaunch lc = l;
    lc.delta = static_cast<float*>(delta.get());
    bool ok = false, on = false;
    with_env("SABLE_LORA_TICKET", ticket, [&] {
      on = ops::cuda::lora_shrink_tickets();
      ok = ops::cuda::lora_shrink(lc, dtype, static_cast<float*>(scratch.get()), nullptr) &&
           ops::cuda::lora_expand_to_delta(lc, dtype, static_cast<float*>(scratch.get()), nullptr);
    });
    EXPECT_EQ(on, std::string(ticket) == "1");
    EXPECT_TRUE(ok) << "ticket " << ticket;
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    return delta.download<uint32_t>(floats);
  }

  void run(const Case& c) {
    SCOPED_TRACE(c.name);
    rng_.seed(37);
    init(c.slots, c.r_stride, c.rows, c.dtype);
    const int32_t count = static_cast<int32_t>(c.n.size());
    for (int32_t i = 0; i < count; ++i) {
      const int32_t m = c.first + i;
      for (int32_t s = 0; s < c.slots; ++s)  // full rank, a few below it, slot 1 none
        slot_rank_[static_cast<size_t>(s * kC + m)] = s == 1 ? 0
                                                      : s % 3 == 0
                                                          ? c.r_stride
                                                          : std::max(1, c.r_stride - 3 - s % 5);
      if (i + 1 < count || c.pool_for_last) make_pool(kLayer, m, c.k, c.n[static_cast<size_t>(i)]);
    }
    Buf x = random(static_cast<size_t>(c.rows * c.k), 1.0f);
    std::vector<int32_t> row_slot(static_cast<size_t>(c.rows));
    for (int32_t t = 0; t < c.rows; ++t)
      row_slot[static_cast<size_t>(t)] = t % 7 == 5 ? -1 : (t * 5) % c.slots;
    ops::LoraBatch lb = batch(row_slot);
    ops::cuda::LoraLaunch l;
    l.x = x.dev.get();
    l.k = l.ldx = c.k;
    l.count = count;
    l.layer = kLayer;
    l.rank_stride = c.r_stride;
    l.max_tiles = ops::lora_max_tiles(c.rows, c.slots);  // more than the batch's: idle tiles
    l.view = lb.device;
    l.rows = c.rows;
    l.zero_rest = true;
    DeviceBuffer dummy_out(16);
    for (int32_t i = 0; i < count; ++i) {
      l.module[i] = c.first + i;
      l.out[i] = dummy_out.get();  // the delta form never touches the outs
      l.n[i] = c.n[static_cast<size_t>(i)];
      l.ldo[i] = l.n[i];
    }
    ASSERT_NE(l.view.tickets, nullptr);
    const std::vector<uint32_t> want = deltas(l, c.dtype, "0");
    if (HasFatalFailure()) return;
    for (int run = 0; run < 3; ++run) {
      const std::vector<uint32_t> got = deltas(l, c.dtype, "1");
      if (HasFatalFailure()) return;
      ASSERT_EQ(got.size(), want.size());
      for (size_t e = 0; e < want.size(); ++e)
        ASSERT_EQ(got[e], want[e]) << "run " << run << ", delta element " << e;
    }
    std::vector<int32_t> tickets(static_cast<size_t>(l.max_tiles), -1);
    ASSERT_EQ(
        cudaMemcpy(tickets.data(), l.view.tickets, tickets.size() * 4, cudaMemcpyDeviceToHost),
        cudaSuccess);
    for (size_t i = 0; i < tickets.size(); ++i) EXPECT_EQ(tickets[i], 0) << "tile " << i;
  }
};

TEST_F(CudaLoraTicket, SameBitsAsTheReduceLaunch) {
  const Case cases[] = {
      // q|k|v at decode: 8 K splits, 16 slots, 64 rows.
      {"qkv", SABLE_DTYPE_BF16, 16, 16, 64, 4096, SABLE_LORA_Q, {512, 128, 128}},
      // down-like: 10 K splits (a group of four twice and two more), rank stride 32.
      {"down", SABLE_DTYPE_BF16, 6, 32, 40, 5120, SABLE_LORA_DOWN, {384}},
      // gate|up without up's pool, K that takes no 16-byte loads, one row.
      {"gate_up", SABLE_DTYPE_BF16, 3, 8, 1, 1000, SABLE_LORA_GATE, {300, 300}, false},
      {"o_f32", SABLE_DTYPE_F32, 4, 8, 24, 1536, SABLE_LORA_O, {264}},
  };
  for (const Case& c : cases) {
    run(c);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace sable::gputest::lora
