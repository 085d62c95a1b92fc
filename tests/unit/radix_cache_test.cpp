// Radix cache: prefix matching (page-granular), node splitting, lock protection, LRU eviction with
// cascading, flush, the disabled mode, and a randomized check against a naive list of sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/scheduler/radix_cache.h"

using sable::scheduler::PageAllocator;
using sable::scheduler::PrefixMatch;
using sable::scheduler::RadixCache;

namespace {

// Simulates one request: match, lock, allocate the rest, then release (insert) everything.
struct Sim {
  PageAllocator& pool;
  RadixCache& cache;
  int64_t run(const std::vector<int32_t>& tokens, bool insert = true) {
    PrefixMatch m = cache.match_prefix(tokens);
    cache.lock(m.node);
    std::vector<int32_t> pages = m.pages;
    const int32_t need = pool.pages_for(tokens.size()) - static_cast<int32_t>(pages.size());
    auto fresh = pool.allocate(need);
    if (!fresh) {
      cache.evict(need - pool.num_free());
      fresh = pool.allocate(need);
    }
    EXPECT_TRUE(fresh.has_value());
    pages.insert(pages.end(), fresh->begin(), fresh->end());
    cache.release(tokens, pages, static_cast<int32_t>(m.pages.size()), m.node, insert);
    return m.num_tokens;
  }
};

}  // namespace

TEST(RadixCache, MatchesLongestPrefixAndSplits) {
  PageAllocator pool(64, 1);
  RadixCache cache(pool, true);
  Sim sim{pool, cache};
  EXPECT_EQ(sim.run({1, 2, 3, 4, 5}), 0);
  EXPECT_EQ(cache.total_pages(), 5);
  EXPECT_EQ(sim.run({1, 2, 3, 9, 9}), 3);  // splits the edge at 3
  EXPECT_EQ(cache.total_pages(), 7);
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{1, 2, 3, 4, 5, 6}), 5);
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{1, 2, 7}), 2);
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{7}), 0);
  PrefixMatch m = cache.match_prefix(std::vector<int32_t>{1, 2, 3, 9, 9, 9});
  EXPECT_EQ(m.num_tokens, 5);
  EXPECT_EQ(m.pages.size(), 5u);
  // Every page is either free or in the tree.
  EXPECT_EQ(pool.num_free() + cache.total_pages(), pool.num_pages());
}

TEST(RadixCache, PageGranularKeys) {
  PageAllocator pool(64, 4);
  RadixCache cache(pool, true);
  Sim sim{pool, cache};
  // 10 tokens: two whole pages cached, the partial third page freed.
  EXPECT_EQ(sim.run({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}), 0);
  EXPECT_EQ(cache.total_pages(), 2);
  EXPECT_EQ(pool.num_free() + cache.total_pages(), pool.num_pages());
  // Shares 6 tokens, but only the first whole page matches.
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{0, 1, 2, 3, 4, 5, 99, 99}), 4);
  EXPECT_EQ(sim.run({0, 1, 2, 3, 4, 5, 99, 99}), 4);
  EXPECT_EQ(cache.total_pages(), 3);
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{0, 1, 2}), 0);  // less than a page
}

TEST(RadixCache, LockedNodesSurviveEviction) {
  PageAllocator pool(16, 1);
  RadixCache cache(pool, true);
  Sim sim{pool, cache};
  sim.run({1, 2, 3, 4});
  PrefixMatch m = cache.match_prefix(std::vector<int32_t>{1, 2, 3, 4});
  cache.lock(m.node);
  EXPECT_EQ(cache.evictable_pages(), 0);
  EXPECT_EQ(cache.protected_pages(), 4);
  EXPECT_EQ(cache.flush(), 0);
  EXPECT_EQ(cache.total_pages(), 4);
  cache.unlock(m.node);
  EXPECT_EQ(cache.evictable_pages(), 4);
  EXPECT_EQ(cache.flush(), 4);
  EXPECT_EQ(pool.num_free(), 16);
  EXPECT_NO_THROW(cache.unlock(cache.match_prefix(std::vector<int32_t>{5}).node));  // root: no-op
}

TEST(RadixCache, EvictsLeastRecentlyUsedLeavesAndCascades) {
  PageAllocator pool(32, 1);
  RadixCache cache(pool, true);
  Sim sim{pool, cache};
  sim.run({1, 2, 3});     // A
  sim.run({1, 2, 4, 5});  // B shares [1,2]
  sim.run({7, 8});        // C
  // Touch A again so B's leaf is the oldest leaf, then C.
  cache.match_prefix(std::vector<int32_t>{1, 2, 3});
  EXPECT_EQ(cache.evict(1), 2);  // B's leaf [4,5]
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{1, 2, 4, 5}), 2);
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{7, 8}), 2);
  EXPECT_EQ(cache.evict(1), 2);  // C
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{7, 8}), 0);
  EXPECT_EQ(cache.evict(2), 3);  // A's leaf [3], then its parent [1,2] cascades
  EXPECT_EQ(cache.total_pages(), 0);
  EXPECT_EQ(pool.num_free(), 32);
}

TEST(RadixCache, DuplicateInsertFreesTheCopy) {
  PageAllocator pool(16, 1);
  RadixCache cache(pool, true);
  // Two requests with the same prompt run concurrently, neither hits the cache.
  auto a = pool.allocate(3);
  auto b = pool.allocate(3);
  const std::vector<int32_t> t{5, 6, 7};
  cache.release(t, *a, 0, nullptr);
  cache.release(t, *b, 0, nullptr);
  EXPECT_EQ(cache.total_pages(), 3);
  EXPECT_EQ(pool.num_free(), 13);
}

TEST(RadixCache, CacheUnfinishedMovesTheLock) {
  PageAllocator pool(16, 2);
  RadixCache cache(pool, true);
  auto pages = *pool.allocate(3);  // 5 tokens: two whole pages + a partial one
  const std::vector<int32_t> t{1, 2, 3, 4, 5};
  PrefixMatch m;
  auto out = cache.cache_unfinished(t, pages, 0, nullptr, &m);
  EXPECT_EQ(out, pages);
  EXPECT_EQ(m.num_tokens, 4);
  EXPECT_EQ(cache.protected_pages(), 2);
  EXPECT_EQ(cache.flush(), 0);
  cache.release(t, out, static_cast<int32_t>(m.pages.size()), m.node);
  EXPECT_EQ(cache.evictable_pages(), 2);
  EXPECT_EQ(pool.num_free(), 14);
}

TEST(RadixCache, CacheUnfinishedAdoptsPagesAnotherRequestInserted) {
  PageAllocator pool(32, 2);
  RadixCache cache(pool, true);
  // Two requests computed the same 5 tokens in one batch, each into its own pages.
  const auto a = *pool.allocate(3);
  const auto b = *pool.allocate(3);
  const std::vector<int32_t> t{1, 2, 3, 4, 5};
  PrefixMatch ma, mb;
  EXPECT_EQ(cache.cache_unfinished(t, a, 0, nullptr, &ma), a);
  const auto out_b = cache.cache_unfinished(t, b, 0, nullptr, &mb);
  EXPECT_EQ(out_b, (std::vector<int32_t>{a[0], a[1], b[2]}));  // the duplicates were freed
  EXPECT_EQ(mb.node, ma.node);
  EXPECT_EQ(mb.num_tokens, 4);
  EXPECT_EQ(pool.num_free(), 32 - 6 + 2);
  EXPECT_EQ(cache.protected_pages(), 2);
  EXPECT_EQ(ma.node->lock_ref, 2);
  // A later request matches the prefix while both still run.
  EXPECT_EQ(cache.peek_prefix_length(std::vector<int32_t>{1, 2, 3, 4, 9}), 4);
  // b grows past the shared prefix and caches again, keeping its matched pages in front.
  auto grown = out_b;
  grown.push_back(*pool.allocate(1)->begin());
  const std::vector<int32_t> t2{1, 2, 3, 4, 5, 6, 7};
  PrefixMatch mb2;
  const auto out_b2 = cache.cache_unfinished(t2, grown, static_cast<int32_t>(mb.pages.size()),
                                             mb.node, &mb2);
  EXPECT_EQ(out_b2, grown);
  EXPECT_EQ(mb2.num_tokens, 6);
  EXPECT_EQ(ma.node->lock_ref, 2);   // a's lock, plus b's through its descendant
  EXPECT_EQ(mb2.node->lock_ref, 1);
  EXPECT_EQ(cache.protected_pages(), 3);
  cache.release(t, a, static_cast<int32_t>(ma.pages.size()), ma.node);
  cache.release(t2, out_b2, static_cast<int32_t>(mb2.pages.size()), mb2.node);
  EXPECT_EQ(cache.protected_pages(), 0);
  EXPECT_EQ(cache.total_pages(), 3);
  EXPECT_EQ(pool.num_free() + cache.total_pages(), 32);
  EXPECT_EQ(cache.flush(), 3);
  EXPECT_EQ(pool.num_free(), 32);
}

TEST(RadixCache, DisabledCachesNothing) {
  PageAllocator pool(8, 1);
  RadixCache cache(pool, false);
  Sim sim{pool, cache};
  EXPECT_EQ(sim.run({1, 2, 3}), 0);
  EXPECT_EQ(sim.run({1, 2, 3}), 0);
  EXPECT_EQ(cache.total_pages(), 0);
  EXPECT_EQ(pool.num_free(), 8);
}

TEST(RadixCache, RandomizedAgainstNaivePrefixes) {
  for (int32_t page_size : {1, 3}) {
    PageAllocator pool(4096, page_size);
    RadixCache cache(pool, true);
    Sim sim{pool, cache};
    std::mt19937 rng(1234 + page_size);
    std::vector<std::vector<int32_t>> inserted;
    for (int i = 0; i < 200; ++i) {
      std::vector<int32_t> seq;
      if (!inserted.empty() && rng() % 2) {
        const auto& base = inserted[rng() % inserted.size()];
        seq.assign(base.begin(), base.begin() + rng() % (base.size() + 1));
      }
      const int extra = 1 + rng() % 12;
      for (int k = 0; k < extra; ++k) seq.push_back(static_cast<int32_t>(rng() % 4));
      int64_t expected = 0;
      for (const auto& s : inserted) {
        size_t c = 0;
        while (c < s.size() && c < seq.size() && s[c] == seq[c]) ++c;
        const size_t aligned_s = s.size() / page_size * page_size;
        expected = std::max<int64_t>(expected, std::min(c, aligned_s) / page_size * page_size);
      }
      ASSERT_EQ(cache.peek_prefix_length(seq), expected) << "iteration " << i;
      ASSERT_EQ(sim.run(seq), expected) << "iteration " << i;
      inserted.push_back(seq);
      ASSERT_EQ(pool.num_free() + cache.total_pages(), pool.num_pages());
    }
    cache.flush();
    EXPECT_EQ(pool.num_free(), pool.num_pages());
  }
}

TEST(RadixCache, TinyPoolEvictsOnDemand) {
  PageAllocator pool(8, 1);
  RadixCache cache(pool, true);
  Sim sim{pool, cache};
  for (int i = 0; i < 20; ++i) sim.run({i, i + 1, i + 2, i + 3, i + 4});
  EXPECT_LE(cache.total_pages(), 8);
  EXPECT_EQ(pool.num_free() + cache.total_pages(), 8);
}

// LoRA: each adapter has its own namespace. The same tokens cached with adapter 1 are not matched
// for the base model or adapter 2, each keeps its own pages, and eviction and flush reach every
// namespace.
TEST(RadixCache, AdaptersNeverSharePrefixes) {
  PageAllocator pool(32, 1);
  RadixCache cache(pool, true);
  auto run = [&](const std::vector<int32_t>& tokens, int32_t adapter) {
    PrefixMatch m = cache.match_prefix(tokens, adapter);
    cache.lock(m.node);
    std::vector<int32_t> pages = m.pages;
    auto fresh = pool.allocate(static_cast<int32_t>(tokens.size() - pages.size()));
    EXPECT_TRUE(fresh.has_value());
    pages.insert(pages.end(), fresh->begin(), fresh->end());
    cache.release(tokens, pages, static_cast<int32_t>(m.pages.size()), m.node, true, adapter);
    return m.num_tokens;
  };
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(run(prompt, 1), 0);
  EXPECT_EQ(cache.peek_prefix_length(prompt, 1), 6);
  EXPECT_EQ(cache.peek_prefix_length(prompt, 0), 0);
  EXPECT_EQ(cache.peek_prefix_length(prompt, 2), 0);
  EXPECT_EQ(run(prompt, 0), 0);  // the base model computes its own KV
  EXPECT_EQ(run(prompt, 2), 0);
  EXPECT_EQ(run(prompt, 1), 6);  // the same adapter reuses its whole prefix
  EXPECT_EQ(cache.total_pages(), 18);
  EXPECT_EQ(pool.num_free() + cache.total_pages(), pool.num_pages());
  EXPECT_EQ(cache.evict(12), 12);  // two namespaces' leaves go, LRU first
  EXPECT_EQ(cache.peek_prefix_length(prompt, 1), 6);  // adapter 1 was used last
  EXPECT_EQ(cache.flush(), 6);
  EXPECT_EQ(pool.num_free(), pool.num_pages());
  EXPECT_EQ(cache.peek_prefix_length(prompt, 1), 0);
}
