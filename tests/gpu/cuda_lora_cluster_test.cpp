// lora_delta_cluster (core/ops/cuda/lora_cluster_kernel.cu: shrink, split sums and expand in one
// launch of thread-block clusters) against the three launches it replaces (lora_shrink, then
// lora_expand_to_delta): the same fp32 deltas bit for bit, for cluster sizes and block widths, on
// decode shapes with many K splits (a whole group of four and a rest), several shrink tasks per
// warp, ranks below the stride, a slot without rank, a module without a pool, rows without an
// adapter, scalar loads and f32; with zero_rest every row of the NaN-poisoned buffer must be
// written, and without it the rows outside the tiles must keep their poison. Part of cuda_ops_test
// (skipped without a GPU).
#include <cstring>
#include <string>
#include <utility>

#include "tests/gpu/cuda_lora_fixture.h"

namespace sable::gputest::lora {
namespace {

struct Case {
  const char* name;
  int32_t dtype, slots, r_stride, rows;
  int64_t k;
  int32_t first;
  std::vector<int64_t> n;
  bool zero_rest;
  bool pool_for_last = true;  // false: the last module has no pool
};

// Runs f on a thread of its own with SABLE_LORA_CLUSTER=size and SABLE_LORA_CLUSTER_WARPS=warps.
void with_cluster(const char* size, const char* warps, const std::function<void()>& f) {
  with_env("SABLE_LORA_CLUSTER", size, [&] { with_env("SABLE_LORA_CLUSTER_WARPS", warps, f); });
}
void with_cluster(const char* size, const std::function<void()>& f) {
  with_cluster(size, "8", f);
}

class CudaLoraCluster : public CudaLoraOps {
 protected:
  void run(const Case& c) {
    SCOPED_TRACE(c.name);
    rng_.seed(31);
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
    l.max_tiles = ops::lora_max_tiles(c.rows, c.slots);
    l.view = lb.device;
    l.rows = c.rows;
    l.zero_rest = c.zero_rest;
    DeviceBuffer dummy_out(16);
    for (int32_t i = 0; i < count; ++i) {
      l.module[i] = c.first + i;
      l.out[i] = dummy_out.get();  // the delta forms never touch the outs
      l.n[i] = c.n[static_cast<size_t>(i)];
      l.ldo[i] = l.n[i];
    }
    const size_t floats = ops::cuda::lora_delta_floats(l);
    ASSERT_GT(floats, 0u);
    DeviceBuffer scratch(std::max<size_t>(ops::cuda::lora_scratch_floats(l, c.dtype), 1) * 4);
    DeviceBuffer want_dev(floats * 4);
    ASSERT_EQ(cudaMemset(want_dev.get(), 0xff, floats * 4), cudaSuccess);  // NaNs
    l.delta = static_cast<float*>(want_dev.get());
    ASSERT_TRUE(ops::cuda::lora_shrink(l, c.dtype, static_cast<float*>(scratch.get()), nullptr));
    ASSERT_TRUE(
        ops::cuda::lora_expand_to_delta(l, c.dtype, static_cast<float*>(scratch.get()), nullptr));
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<uint32_t> want = want_dev.download<uint32_t>(floats);
    for (auto [size, warps] : {std::pair{"8", "8"}, std::pair{"8", "4"}, std::pair{"8", "12"},
                               std::pair{"4", "8"}, std::pair{"2", "4"}, std::pair{"1", "12"}}) {
      DeviceBuffer got_dev(floats * 4);
      ASSERT_EQ(cudaMemset(got_dev.get(), 0xff, floats * 4), cudaSuccess);
      ops::cuda::LoraLaunch lc = l;
      lc.delta = static_cast<float*>(got_dev.get());
      bool fits = false, ok = false;
      with_cluster(size, warps, [&] {
        fits = ops::cuda::lora_delta_cluster_fits(lc, c.dtype);
        ok = fits && ops::cuda::lora_delta_cluster(lc, c.dtype, nullptr);
      });
      ASSERT_TRUE(fits) << "cluster " << size << " x " << warps << " warps";
      ASSERT_TRUE(ok) << "cluster " << size << " x " << warps
                      << " warps: " << cudaGetErrorString(cudaGetLastError());
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<uint32_t> got = got_dev.download<uint32_t>(floats);
      for (size_t e = 0; e < floats; ++e)
        ASSERT_EQ(got[e], want[e])
            << "cluster " << size << " x " << warps << " warps, delta element " << e;
    }
    if (c.zero_rest) {  // the reference path wrote every row: no poison left
      for (uint32_t v : want) {
        float f;
        std::memcpy(&f, &v, 4);
        ASSERT_FALSE(std::isnan(f)) << "a delta row was left unwritten";
      }
    }
  }
};

TEST_F(CudaLoraCluster, SameBitsAsTheThreeLaunches) {
  if (!hopper_or_newer()) GTEST_SKIP() << "thread-block clusters need compute capability 9.0";
  const Case cases[] = {
      // q|k|v at decode: 8 K splits, 16 slots, 64 rows; 12 shrink tasks for 3 x 4 rank quads.
      {"qkv", SABLE_DTYPE_BF16, 16, 16, 64, 4096, SABLE_LORA_Q, {512, 128, 128}, true},
      // down-like: 10 K splits (a group of four twice and two more), rank stride 32: more tasks
      // than the cluster's warps at small cluster sizes.
      {"down", SABLE_DTYPE_BF16, 6, 32, 40, 5120, SABLE_LORA_DOWN, {384}, false},
      // gate|up without up's pool, K that takes no 16-byte loads, one row.
      {"gate_up", SABLE_DTYPE_BF16, 3, 8, 1, 1000, SABLE_LORA_GATE, {300, 300}, true, false},
      {"o_f32", SABLE_DTYPE_F32, 4, 8, 24, 1536, SABLE_LORA_O, {264}, true},
  };
  for (const Case& c : cases) {
    run(c);
    if (HasFatalFailure()) return;
  }
}

TEST_F(CudaLoraCluster, SwitchedOffOrTooLargeLaunchesNothing) {
  init(2, 8, 4, SABLE_DTYPE_BF16);
  ops::cuda::LoraLaunch l;
  l.k = l.ldx = 64;
  l.count = 1;
  l.rank_stride = 8;
  l.max_tiles = 2;
  l.rows = 4;
  l.n[0] = 64;
  l.module[0] = SABLE_LORA_O;
  bool fits = true;
  with_cluster("8", [&] { fits = ops::cuda::lora_delta_cluster_fits(l, SABLE_DTYPE_BF16); });
  EXPECT_FALSE(fits) << "no delta buffer";
  DeviceBuffer d(64 * 4 * 4);
  l.delta = static_cast<float*>(d.get());
  with_cluster("0", [&] {
    fits = ops::cuda::lora_delta_cluster_fits(l, SABLE_DTYPE_BF16) ||
           ops::cuda::lora_delta_cluster(l, SABLE_DTYPE_BF16, nullptr);
  });
  EXPECT_FALSE(fits) << "SABLE_LORA_CLUSTER=0";
  // q|k|v at rank stride 512: the sums alone need 48 KB of shared memory, more than it takes.
  l.count = 3;
  for (int32_t i = 0; i < 3; ++i) {
    l.module[i] = SABLE_LORA_Q + i;
    l.n[i] = 64;
  }
  l.rank_stride = 512;
  with_cluster("8", [&] { fits = ops::cuda::lora_delta_cluster_fits(l, SABLE_DTYPE_BF16); });
  EXPECT_FALSE(fits) << "rank stride 512";
}

}  // namespace
}  // namespace sable::gputest::lora
