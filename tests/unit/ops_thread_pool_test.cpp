// The CPU ops' thread pool (core/ops/cpu/thread_pool.h): every chunk runs exactly once whatever
// the team size, a job started from inside a job runs inline, and two threads submitting jobs at
// the same time both get all their chunks run; the ops table's parallel_for (ABI 1.6, for plugins)
// runs every index once over the same pool and rejects a negative count or a NULL function.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cpu/thread_pool.h"
#include "sable/cpp/host.h"

namespace sable::ops::cpu {
namespace {

TEST(ThreadPool, EveryChunkRunsExactlyOnce) {
  for (int team : {1, 2, 3, 8}) {
    for (int64_t chunks : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
      parallel_for(chunks, team, [&](int64_t c) { hits[static_cast<size_t>(c)].fetch_add(1); });
      for (int64_t c = 0; c < chunks; ++c)
        ASSERT_EQ(hits[static_cast<size_t>(c)].load(), 1) << "team " << team << " chunk " << c;
    }
  }
}

TEST(ThreadPool, AJobInsideAJobRunsInline) {
  std::atomic<int> inner{0};
  parallel_for(4, 2, [&](int64_t) {
    const auto self = std::this_thread::get_id();
    parallel_for(5, 2, [&](int64_t) {
      EXPECT_EQ(std::this_thread::get_id(), self);
      inner.fetch_add(1);
    });
  });
  EXPECT_EQ(inner.load(), 20);
}

TEST(ThreadPool, ConcurrentCallersAreSerialized) {
  std::atomic<int64_t> sum{0};
  auto submit = [&] {
    for (int j = 0; j < 200; ++j) parallel_for(16, 2, [&](int64_t c) { sum.fetch_add(c); });
  };
  std::thread a(submit), b(submit);
  a.join();
  b.join();
  EXPECT_EQ(sum.load(), 2 * 200 * (15 * 16 / 2));
}

// Through the C entry plugins get: indices past the pool's 4096 claims run in contiguous runs.
TEST(ThreadPool, OpsTableParallelForRunsEveryIndexOnce) {
  const SableOps* ops = cpu_ops();
  ASSERT_TRUE(SABLE_HAS(ops, parallel_for));
  ASSERT_NE(ops->parallel_for, nullptr);
  set_threads(3);
  SableOpsContext ctx;
  for (int64_t n : {0, 1, 2, 63, 4096, 4097, 10001}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    auto fn = [](void* user, int64_t i) {
      (*static_cast<std::vector<std::atomic<int>>*>(user))[static_cast<size_t>(i)].fetch_add(1);
    };
    ASSERT_EQ(ops->parallel_for(&ctx, n, fn, &hits), SABLE_OK);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " index " << i;
  }
  set_threads(0);
}

TEST(ThreadPool, OpsTableParallelForRejectsBadArguments) {
  const SableOps* ops = cpu_ops();
  SableOpsContext ctx;
  auto fn = [](void*, int64_t) {};
  EXPECT_EQ(ops->parallel_for(&ctx, -1, fn, nullptr), SABLE_ERR_INVALID_ARGUMENT);
  ASSERT_NE(ctx.last_error, nullptr);
  EXPECT_NE(std::string(ctx.last_error).find("parallel_for: n = -1 is negative"), std::string::npos)
      << ctx.last_error;
  EXPECT_EQ(ops->parallel_for(&ctx, 4, nullptr, nullptr), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ctx.last_error).find("fn is NULL"), std::string::npos) << ctx.last_error;
}

// The SDK's C++ wrapper: on the pool where the table has parallel_for, a plain loop on the calling
// thread where it does not (a 1.5 host's table), every index once either way.
TEST(ThreadPool, SdkWrapperParallelForFallsBackToALoop) {
  SableOpsContext ctx;
  SableOps old = *cpu_ops();
  old.struct_size = offsetof(SableOps, parallel_for);
  for (const SableOps* table : {cpu_ops(), static_cast<const SableOps*>(&old)}) {
    const sable::cpp::Ops ops(table, &ctx);
    EXPECT_EQ(ops.has_parallel_for(), table == cpu_ops());
    std::vector<std::atomic<int>> hits(300);
    const auto caller = std::this_thread::get_id();
    std::atomic<int> elsewhere{0};
    ops.parallel_for(300, [&](int64_t i) {
      hits[static_cast<size_t>(i)].fetch_add(1);
      if (std::this_thread::get_id() != caller) elsewhere.fetch_add(1);
    });
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    if (table != cpu_ops()) EXPECT_EQ(elsewhere.load(), 0) << "no pool: the caller runs them all";
  }
}

}  // namespace
}  // namespace sable::ops::cpu
