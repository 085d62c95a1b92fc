// The CPU ops' thread pool (core/ops/cpu/thread_pool.h): every chunk runs exactly once whatever
// the team size, a job started from inside a job runs inline, and two threads submitting jobs at
// the same time both get all their chunks run.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/ops/cpu/thread_pool.h"

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

}  // namespace
}  // namespace sable::ops::cpu
