// Page allocator: distinct pages, exact accounting, refusal instead of partial allocation, and
// loud failure on double free.
#include <gtest/gtest.h>

#include <set>

#include "core/scheduler/page_allocator.h"

using sable::scheduler::PageAllocator;

TEST(PageAllocator, AllocatesDistinctPagesAndCounts) {
  PageAllocator pool(10, 4);
  EXPECT_EQ(pool.num_free(), 10);
  auto a = pool.allocate(3);
  auto b = pool.allocate(7);
  ASSERT_TRUE(a && b);
  std::set<int32_t> all(a->begin(), a->end());
  all.insert(b->begin(), b->end());
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(*all.begin(), 0);
  EXPECT_EQ(*all.rbegin(), 9);
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.num_used(), 10);
  EXPECT_FALSE(pool.allocate(1).has_value());
  pool.free(*a);
  EXPECT_EQ(pool.num_free(), 3);
}

TEST(PageAllocator, RefusesWithoutTakingAnything) {
  PageAllocator pool(4, 1);
  auto a = pool.allocate(3);
  ASSERT_TRUE(a);
  EXPECT_FALSE(pool.allocate(2).has_value());
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_TRUE(pool.allocate(1).has_value());
}

TEST(PageAllocator, DoubleFreeAndRangeAreErrors) {
  PageAllocator pool(4, 2);
  auto a = pool.allocate(2);
  pool.free(*a);
  EXPECT_THROW(pool.free(*a), std::logic_error);
  const int32_t bad[] = {4};
  EXPECT_THROW(pool.free(bad), std::logic_error);
  EXPECT_THROW(PageAllocator(0, 1), std::invalid_argument);
  EXPECT_THROW(PageAllocator(1, 0), std::invalid_argument);
}

TEST(PageAllocator, PagesFor) {
  PageAllocator pool(4, 16);
  EXPECT_EQ(pool.pages_for(0), 0);
  EXPECT_EQ(pool.pages_for(1), 1);
  EXPECT_EQ(pool.pages_for(16), 1);
  EXPECT_EQ(pool.pages_for(17), 2);
}
