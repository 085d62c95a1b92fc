// The in-process CPU communicator (core/comm): the collectives' results on every rank, the
// rank-order sum (bitwise equal across ranks and runs), disagreeing ranks failing together, and an
// abort releasing ranks blocked in a collective instead of leaving them waiting.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/comm/communicator.h"
#include "core/weights/dtype_convert.h"
#include "sable/cpp/tensor.h"

namespace {

using sable::comm::CommGroup;
using sable::comm::Endpoint;

SableTensor host_tensor(void* data, int32_t dtype, std::initializer_list<int64_t> shape) {
  return sable::cpp::make_tensor(data, dtype, shape);
}

// Runs fn(rank, endpoint) on one thread per rank and joins them.
void on_ranks(CommGroup& g, const std::function<void(int32_t, Endpoint)>& fn) {
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < g.size(); ++r) threads.emplace_back([&, r] { fn(r, g.endpoint(r)); });
  for (auto& t : threads) t.join();
}

// Values whose sum depends on the order of addition in fp32.
float value(int32_t rank, int64_t i) {
  return (rank % 2 == 0 ? 1e8f : 1.0f) * static_cast<float>((i % 7) + 1) * (rank == 1 ? -1.0f : 1.0f) +
         0.37f * static_cast<float>(rank);
}

TEST(CpuComm, AllReduceSumsInRankOrderOnEveryRank) {
  for (int32_t n : {1, 2, 3, 4}) {
    auto g = sable::comm::make_cpu_group(n);
    const int64_t count = 37;  // not a multiple of the ranks: uneven chunks
    std::vector<std::vector<float>> data(static_cast<size_t>(n));
    on_ranks(*g, [&](int32_t r, Endpoint e) {
      auto& v = data[static_cast<size_t>(r)];
      for (int64_t i = 0; i < count; ++i) v.push_back(value(r, i));
      SableTensor t = host_tensor(v.data(), SABLE_DTYPE_F32, {count});
      for (int rep = 0; rep < 3; ++rep) {  // the same collective again reuses the scratch
        if (rep > 0)
          for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = value(r, i);
        ASSERT_EQ(e.api->all_reduce(e.handle, &t, SABLE_REDUCE_SUM, nullptr), SABLE_OK)
            << e.api->last_error(e.handle);
      }
    });
    for (int64_t i = 0; i < count; ++i) {
      float want = value(0, i);
      for (int32_t r = 1; r < n; ++r) want += value(r, i);
      for (int32_t r = 0; r < n; ++r)
        EXPECT_EQ(data[static_cast<size_t>(r)][static_cast<size_t>(i)], want)
            << "n " << n << " rank " << r << " element " << i;
    }
  }
}

TEST(CpuComm, AllReduceBf16RoundsOnce) {
  auto g = sable::comm::make_cpu_group(2);
  std::vector<std::vector<uint16_t>> data(2);
  on_ranks(*g, [&](int32_t r, Endpoint e) {
    auto& v = data[static_cast<size_t>(r)];
    v = {sable::weights::f32_to_bf16(1.0f + static_cast<float>(r)),
         sable::weights::f32_to_bf16(-2.5f * static_cast<float>(r))};
    SableTensor t = host_tensor(v.data(), SABLE_DTYPE_BF16, {1, 2});
    ASSERT_EQ(e.api->all_reduce(e.handle, &t, SABLE_REDUCE_SUM, nullptr), SABLE_OK);
  });
  for (const auto& v : data) {
    EXPECT_EQ(sable::weights::bf16_to_f32(v[0]), 3.0f);
    EXPECT_EQ(sable::weights::bf16_to_f32(v[1]), -2.5f);
  }
}

TEST(CpuComm, AllGatherConcatenatesAlongAnyDim) {
  const int32_t n = 3;
  auto g = sable::comm::make_cpu_group(n);
  // Each rank holds x[2, 2] = 100 * rank + (row * 2 + col).
  std::vector<std::vector<float>> dim0(n, std::vector<float>(12)), dim1(n, std::vector<float>(12));
  on_ranks(*g, [&](int32_t r, Endpoint e) {
    std::vector<float> x(4);
    for (int i = 0; i < 4; ++i) x[static_cast<size_t>(i)] = 100.0f * static_cast<float>(r) + static_cast<float>(i);
    SableTensor xt = host_tensor(x.data(), SABLE_DTYPE_F32, {2, 2});
    SableTensor o0 = host_tensor(dim0[static_cast<size_t>(r)].data(), SABLE_DTYPE_F32, {6, 2});
    SableTensor o1 = host_tensor(dim1[static_cast<size_t>(r)].data(), SABLE_DTYPE_F32, {2, 6});
    ASSERT_EQ(e.api->all_gather(e.handle, &xt, 0, &o0, nullptr), SABLE_OK);
    ASSERT_EQ(e.api->all_gather(e.handle, &xt, 1, &o1, nullptr), SABLE_OK);
  });
  const std::vector<float> want0 = {0, 1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203};
  const std::vector<float> want1 = {0, 1, 100, 101, 200, 201, 2, 3, 102, 103, 202, 203};
  for (int32_t r = 0; r < n; ++r) {
    EXPECT_EQ(dim0[static_cast<size_t>(r)], want0) << "rank " << r;
    EXPECT_EQ(dim1[static_cast<size_t>(r)], want1) << "rank " << r;
  }
}

TEST(CpuComm, BroadcastAndBarrier) {
  const int32_t n = 4;
  auto g = sable::comm::make_cpu_group(n);
  std::vector<std::vector<int32_t>> data(n);
  std::atomic<int> before{0};
  std::atomic<bool> early{false};
  on_ranks(*g, [&](int32_t r, Endpoint e) {
    data[static_cast<size_t>(r)] = {r, 10 * r, 7};
    SableTensor t = host_tensor(data[static_cast<size_t>(r)].data(), SABLE_DTYPE_I32, {3});
    ASSERT_EQ(e.api->broadcast(e.handle, &t, 2, nullptr), SABLE_OK);
    if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    before.fetch_add(1);
    ASSERT_EQ(e.api->barrier(e.handle, nullptr), SABLE_OK);
    if (before.load() != n) early = true;  // someone left the barrier before all arrived
  });
  EXPECT_FALSE(early.load());
  for (const auto& v : data) EXPECT_EQ(v, (std::vector<int32_t>{2, 20, 7}));
}

TEST(CpuComm, DisagreeingRanksFailTogether) {
  auto g = sable::comm::make_cpu_group(2);
  std::vector<SableStatus> st(2);
  std::vector<std::string> msg(2);
  on_ranks(*g, [&](int32_t r, Endpoint e) {
    std::vector<float> v(static_cast<size_t>(4 + r), 1.0f);  // rank 1 has one more element
    SableTensor t = host_tensor(v.data(), SABLE_DTYPE_F32, {static_cast<int64_t>(v.size())});
    st[static_cast<size_t>(r)] = e.api->all_reduce(e.handle, &t, SABLE_REDUCE_SUM, nullptr);
    msg[static_cast<size_t>(r)] = e.api->last_error(e.handle);
    // The group stays usable: a matching collective afterwards succeeds.
    std::vector<float> w(3, static_cast<float>(r));
    SableTensor u = host_tensor(w.data(), SABLE_DTYPE_F32, {3});
    EXPECT_EQ(e.api->all_reduce(e.handle, &u, SABLE_REDUCE_SUM, nullptr), SABLE_OK);
    EXPECT_EQ(w[0], 1.0f);
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(st[static_cast<size_t>(r)], SABLE_ERR_INVALID_ARGUMENT);
    EXPECT_NE(msg[static_cast<size_t>(r)].find("ranks disagree"), std::string::npos) << msg[static_cast<size_t>(r)];
  }
}

TEST(CpuComm, LocalMistakesAreNamed) {
  auto g = sable::comm::make_cpu_group(1);
  Endpoint e = g->endpoint(0);
  std::vector<float> v(4, 1.0f), o(4);
  SableTensor t = host_tensor(v.data(), SABLE_DTYPE_F32, {2, 2});
  SableTensor out = host_tensor(o.data(), SABLE_DTYPE_F32, {4});
  EXPECT_EQ(e.api->all_gather(e.handle, &t, 2, &out, nullptr), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.api->last_error(e.handle)).find("dim 2"), std::string::npos);
  EXPECT_EQ(e.api->all_gather(e.handle, &t, 0, &out, nullptr), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(e.api->broadcast(e.handle, &t, 1, nullptr), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.api->last_error(e.handle)).find("root 1"), std::string::npos);
  EXPECT_EQ(e.api->all_reduce(e.handle, &t, 7, nullptr), SABLE_ERR_INVALID_ARGUMENT);
  // One rank: the collectives are identities.
  EXPECT_EQ(e.api->all_reduce(e.handle, &t, SABLE_REDUCE_SUM, nullptr), SABLE_OK);
  EXPECT_EQ(v, (std::vector<float>{1, 1, 1, 1}));
  EXPECT_EQ(e.api->size(e.handle), 1);
  EXPECT_THROW(g->endpoint(1), std::out_of_range);
  EXPECT_THROW(sable::comm::make_cpu_group(0), std::invalid_argument);
}

TEST(CpuComm, AbortReleasesBlockedRanks) {
  auto g = sable::comm::make_cpu_group(3);
  std::vector<SableStatus> st(3, SABLE_OK);
  std::vector<std::string> msg(3);
  on_ranks(*g, [&](int32_t r, Endpoint e) {
    if (r == 2) {  // the failing rank: never joins, aborts the group instead
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      g->abort("rank 2 failed: out of memory");
      return;
    }
    std::vector<float> v(8, 1.0f);
    SableTensor t = host_tensor(v.data(), SABLE_DTYPE_F32, {8});
    st[static_cast<size_t>(r)] = e.api->all_reduce(e.handle, &t, SABLE_REDUCE_SUM, nullptr);
    msg[static_cast<size_t>(r)] = e.api->last_error(e.handle);
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(st[static_cast<size_t>(r)], SABLE_ERR_DEVICE);
    EXPECT_NE(msg[static_cast<size_t>(r)].find("rank 2 failed: out of memory"), std::string::npos);
  }
  ASSERT_TRUE(g->failure().has_value());
  EXPECT_EQ(*g->failure(), "rank 2 failed: out of memory");
  Endpoint e = g->endpoint(0);  // later collectives fail at once
  EXPECT_EQ(e.api->barrier(e.handle, nullptr), SABLE_ERR_DEVICE);
}

TEST(NcclComm, AbsentBuildSaysSo) {
  if (sable::comm::nccl_available()) GTEST_SKIP() << "this build has NCCL (tests/gpu covers it)";
  const std::vector<int32_t> devices = {0, 1};
  try {
    sable::comm::make_nccl_group(devices);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("needs NCCL"), std::string::npos) << e.what();
  }
}

}  // namespace
