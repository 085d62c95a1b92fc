// Scratch arena and expert recorder: alignment, pointer stability while growing, merging on reset
// (no allocation after the first forward), deterministic addresses, mark/release, growth off,
// and the recorder's counts under concurrent recording.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/expert_recorder.h"

namespace sable::ops {
namespace {

// Counts what it hands out, to prove the arena stops allocating.
class CountingBacking final : public Backing {
 public:
  explicit CountingBacking(int* calls, size_t limit = SIZE_MAX) : calls_(calls), limit_(limit) {}
  void* allocate(size_t bytes) override {
    if (bytes > limit_) return nullptr;
    ++*calls_;
    return host_.allocate(bytes);
  }
  void deallocate(void* p, size_t bytes) noexcept override { host_.deallocate(p, bytes); }
  int32_t device_type() const override { return 0; }

 private:
  HostBacking host_;
  int* calls_;
  size_t limit_;
};

// One "forward": a fixed sequence of allocations, each filled to catch overlaps.
std::vector<void*> forward(Arena& a, const std::vector<size_t>& sizes) {
  std::vector<void*> ptrs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    void* p = a.allocate(sizes[i]);
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    std::memset(p, static_cast<int>(i + 1), sizes[i]);
    ptrs.push_back(p);
  }
  for (size_t i = 0; i < sizes.size(); ++i) {  // earlier blocks survived later growth
    const auto* b = static_cast<const unsigned char*>(ptrs[i]);
    EXPECT_EQ(b[0], static_cast<unsigned char>(i + 1));
    EXPECT_EQ(b[sizes[i] - 1], static_cast<unsigned char>(i + 1));
  }
  return ptrs;
}

TEST(Arena, GrowsThenMergesAndStopsAllocating) {
  int calls = 0;
  Arena a(std::make_unique<CountingBacking>(&calls));
  const std::vector<size_t> sizes = {1000, 3 << 20, 17, 5 << 20, 64, 1 << 20};
  forward(a, sizes);
  EXPECT_GT(a.chunk_count(), 1u);
  a.reset();
  EXPECT_EQ(a.chunk_count(), 1u);
  const int after_merge = calls;
  const std::vector<void*> second = forward(a, sizes);
  a.reset();
  const std::vector<void*> third = forward(a, sizes);
  EXPECT_EQ(calls, after_merge);  // no allocation after the first forward
  EXPECT_EQ(second, third);       // identical sequences, identical addresses
  EXPECT_EQ(a.chunk_count(), 1u);
}

TEST(Arena, AlignmentAndZeroBytes) {
  Arena a;
  void* p = a.allocate(3, 1);
  void* q = a.allocate(8, 256);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 256, 0u);
  EXPECT_NE(p, q);
  EXPECT_NE(a.allocate(0), nullptr);
  EXPECT_EQ(a.allocate(8, 3), nullptr);  // not a power of two
}

TEST(Arena, MarkRelease) {
  Arena a(1 << 20);
  void* p = a.allocate(100);
  const Arena::Mark m = a.mark();
  void* q = a.allocate(1000);
  a.release(m);
  EXPECT_EQ(a.allocate(1000), q);
  EXPECT_NE(p, q);
}

TEST(Arena, GrowthOffReturnsNull) {
  int calls = 0;
  Arena a(std::make_unique<CountingBacking>(&calls), 1 << 20);
  a.set_growth(false);
  EXPECT_NE(a.allocate(1 << 19), nullptr);
  EXPECT_EQ(a.allocate(1 << 20), nullptr);
  EXPECT_EQ(calls, 1);
}

TEST(Arena, ExhaustedBackingReturnsNull) {
  int calls = 0;
  Arena a(std::make_unique<CountingBacking>(&calls, size_t{4} << 20));
  EXPECT_EQ(a.allocate(size_t{64} << 20), nullptr);
  EXPECT_NE(a.allocate(1024), nullptr);
}

TEST(ExpertRecorder, CountsPerLayerAndExpert) {
  ExpertRecorder r;
  const int32_t a[] = {0, 3, 3, 1};
  const int32_t b[] = {2, -1};
  r.record(0, a);
  r.record(2, b);
  r.record(-1, a);  // ignored
  const auto c = r.snapshot();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], (std::vector<int64_t>{1, 1, 0, 2}));
  EXPECT_TRUE(c[1].empty());
  EXPECT_EQ(c[2], (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(r.total(), 5);
  r.reset();
  EXPECT_TRUE(r.snapshot().empty());
  EXPECT_EQ(r.total(), 0);
}

TEST(ExpertRecorder, ThreadSafe) {
  ExpertRecorder r;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&r, i] {
      const int32_t ids[] = {i, 7};
      for (int n = 0; n < 1000; ++n) r.record(n % 3, ids);
    });
  }
  for (auto& t : threads) t.join();
  const auto c = r.snapshot();
  EXPECT_EQ(r.total(), 8000);
  int64_t sevens = 0;
  for (const auto& layer : c) sevens += layer[7];
  EXPECT_EQ(sevens, 4000);
}

}  // namespace
}  // namespace sable::ops
