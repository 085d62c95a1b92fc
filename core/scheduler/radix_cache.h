// The radix prefix cache: a tree over token ids whose edges own KV pages, so a new request can reuse
// the KV of its longest cached prefix instead of recomputing it.
//
// Keys are page-granular: every edge label is a whole number of pages (page_size tokens each), and
// a prefix only matches page by page. Each node carries a lock reference count; a request locks the
// node its cached prefix ends at (which locks every ancestor) while it runs, and locked nodes are
// never evicted. Finished requests leave their tokens (prompt + output) in the tree; unlocked leaves
// are evicted LRU-first when the pool runs out, cascading to parents that become unlocked leaves.
// When disabled the tree stays empty: nothing is matched and finished requests free all pages.
// Keys live in one namespace per LoRA adapter (`adapter`, 0 = the base model): the same tokens
// computed with another adapter have other KV, so prefixes are never shared across adapters. An
// adapter's namespace is a permanently locked, page-less node under the root.
//
// Ownership: the tree owns the pages on its edges (it frees them to the PageAllocator on eviction).
// Thread-safety: none; the scheduler thread is the only user.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "core/scheduler/page_allocator.h"

namespace sable::scheduler {

struct RadixNode {
  std::vector<int32_t> key;    // edge label: tokens, a multiple of page_size
  std::vector<int32_t> pages;  // one page per page_size tokens of key
  std::map<std::vector<int32_t>, std::unique_ptr<RadixNode>> children;  // by first page of key
  RadixNode* parent = nullptr;
  int32_t lock_ref = 0;
  uint64_t last_access = 0;
};

// The longest cached prefix of a token sequence.
struct PrefixMatch {
  std::vector<int32_t> pages;   // KV pages of the prefix, in order (owned by the tree)
  int64_t num_tokens = 0;       // pages.size() * page_size
  RadixNode* node = nullptr;    // the node the prefix ends at (root when nothing matched)
};

class RadixCache {
 public:
  // `pool` must outlive the cache.
  RadixCache(PageAllocator& pool, bool enabled);
  ~RadixCache();
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  bool enabled() const { return enabled_; }
  int32_t page_size() const { return pool_.page_size(); }

  // Longest cached page-aligned prefix of `tokens`; splits an edge so the prefix ends at a node and
  // refreshes the LRU time of the path. Does not lock.
  PrefixMatch match_prefix(std::span<const int32_t> tokens, int32_t adapter = 0);
  // Length in tokens of the longest cached prefix, without side effects (for the lpm policy).
  int64_t peek_prefix_length(std::span<const int32_t> tokens, int32_t adapter = 0) const;

  // Lock references protect `node` and its ancestors from eviction. nullptr / root are no-ops.
  void lock(RadixNode* node);
  void unlock(RadixNode* node);

  // A request is done (finished, or its KV is being given up). `pages` cover `tokens`
  // (pages_for(tokens.size()) of them, possibly more); the first `num_cached_pages` came from the
  // tree through match_prefix and `locked` is the node they end at. The page-aligned part of
  // `tokens` is inserted (pages already present in the tree are freed as duplicates), the rest
  // freed, and `locked` unlocked. With insert=false (retraction, disabled cache) nothing is
  // inserted: the request's own pages are freed and the lock released.
  void release(std::span<const int32_t> tokens, std::span<const int32_t> pages,
               int32_t num_cached_pages, RadixNode* locked, bool insert = true,
               int32_t adapter = 0);

  // A request continues (chunked prefill): inserts its page-aligned tokens like release(), then
  // moves its lock to the new end node. Returns the request's new page list (tree pages for the
  // aligned prefix followed by its own tail pages) and the new cached count through `match`.
  std::vector<int32_t> cache_unfinished(std::span<const int32_t> tokens,
                                        std::span<const int32_t> pages, int32_t num_cached_pages,
                                        RadixNode* locked, PrefixMatch* match,
                                        int32_t adapter = 0);

  // Frees at least `num_pages` pages by evicting unlocked leaves, least recently used first
  // (cascading). Returns how many were freed (less when not enough are evictable).
  int32_t evict(int32_t num_pages);
  // Drops every unlocked entry (the /flush_cache semantics). Returns pages freed.
  int32_t flush() { return evict(total_pages_); }

  int32_t total_pages() const { return total_pages_;  }       // pages held by the tree
  int32_t evictable_pages() const { return evictable_pages_; }  // of those, not locked
  int32_t protected_pages() const { return total_pages_ - evictable_pages_; }

 private:
  // Inserts the aligned key; returns how many leading pages were already present.
  int32_t insert(std::span<const int32_t> key, std::span<const int32_t> pages, int32_t adapter);
  // The node an adapter's keys hang from: the root for 0, else its namespace node (made on first
  // use; find_root returns nullptr when it does not exist yet).
  RadixNode* adapter_root(int32_t adapter);
  const RadixNode* find_root(int32_t adapter) const;
  RadixNode* split(RadixNode* node, size_t num_pages);
  // Number of leading whole pages on which `node->key` and `tokens` agree.
  size_t common_pages(const RadixNode& node, std::span<const int32_t> tokens) const;
  std::vector<int32_t> first_page(std::span<const int32_t> tokens) const;

  PageAllocator& pool_;
  bool enabled_;
  std::unique_ptr<RadixNode> root_;
  uint64_t clock_ = 0;
  int32_t total_pages_ = 0;
  int32_t evictable_pages_ = 0;
};

}  // namespace sable::scheduler
