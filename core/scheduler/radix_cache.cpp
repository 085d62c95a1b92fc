// Radix prefix cache over KV pages (see radix_cache.h for the contract).
#include "core/scheduler/radix_cache.h"

#include <algorithm>
#include <queue>
#include <stdexcept>

namespace sable::scheduler {

RadixCache::RadixCache(PageAllocator& pool, bool enabled)
    : pool_(pool), enabled_(enabled), root_(std::make_unique<RadixNode>()) {
  root_->lock_ref = 1;  // the root is never evicted
}

RadixCache::~RadixCache() = default;

RadixNode* RadixCache::adapter_root(int32_t adapter) {
  if (adapter == 0) return root_.get();
  // Keyed by one negative token, which no page of real tokens can equal.
  auto& slot = root_->children[std::vector<int32_t>{-1 - adapter}];
  if (!slot) {
    slot = std::make_unique<RadixNode>();
    slot->parent = root_.get();
    slot->lock_ref = 1;  // never a leaf, never evicted; holds no pages
  }
  return slot.get();
}

const RadixNode* RadixCache::find_root(int32_t adapter) const {
  if (adapter == 0) return root_.get();
  auto it = root_->children.find(std::vector<int32_t>{-1 - adapter});
  return it == root_->children.end() ? nullptr : it->second.get();
}

std::vector<int32_t> RadixCache::first_page(std::span<const int32_t> tokens) const {
  const size_t n = std::min<size_t>(tokens.size(), static_cast<size_t>(page_size()));
  return std::vector<int32_t>(tokens.begin(), tokens.begin() + n);
}

size_t RadixCache::common_pages(const RadixNode& node, std::span<const int32_t> tokens) const {
  const size_t ps = static_cast<size_t>(page_size());
  const size_t max_pages = std::min(node.key.size(), tokens.size()) / ps;
  size_t p = 0;
  for (; p < max_pages; ++p) {
    if (!std::equal(node.key.begin() + p * ps, node.key.begin() + (p + 1) * ps,
                    tokens.begin() + p * ps)) {
      break;
    }
  }
  return p;
}

RadixNode* RadixCache::split(RadixNode* node, size_t num_pages) {
  // node (key K, pages P) becomes mid (K[:k]) -> node (K[k:]).
  const size_t ps = static_cast<size_t>(page_size());
  RadixNode* parent = node->parent;
  auto& slot = parent->children.at(first_page(node->key));
  std::unique_ptr<RadixNode> owned = std::move(slot);
  auto mid = std::make_unique<RadixNode>();
  mid->key.assign(node->key.begin(), node->key.begin() + num_pages * ps);
  mid->pages.assign(node->pages.begin(), node->pages.begin() + num_pages);
  mid->parent = parent;
  mid->lock_ref = node->lock_ref;
  mid->last_access = node->last_access;
  node->key.erase(node->key.begin(), node->key.begin() + num_pages * ps);
  node->pages.erase(node->pages.begin(), node->pages.begin() + num_pages);
  node->parent = mid.get();
  RadixNode* mid_raw = mid.get();
  mid->children.emplace(first_page(node->key), std::move(owned));
  slot = std::move(mid);
  return mid_raw;
}

PrefixMatch RadixCache::match_prefix(std::span<const int32_t> tokens, int32_t adapter) {
  PrefixMatch m;
  m.node = root_.get();
  if (!enabled_) return m;
  const size_t ps = static_cast<size_t>(page_size());
  const uint64_t now = ++clock_;
  RadixNode* node = adapter_root(adapter);
  m.node = node;
  size_t pos = 0;
  while (tokens.size() - pos >= ps) {
    auto it = node->children.find(first_page(tokens.subspan(pos)));
    if (it == node->children.end()) break;
    RadixNode* child = it->second.get();
    const size_t k = common_pages(*child, tokens.subspan(pos));
    if (k == 0) break;
    if (k * ps < child->key.size()) child = split(child, k);
    child->last_access = now;
    m.pages.insert(m.pages.end(), child->pages.begin(), child->pages.end());
    pos += k * ps;
    node = child;
  }
  m.num_tokens = static_cast<int64_t>(pos);
  m.node = node;
  return m;
}

int64_t RadixCache::peek_prefix_length(std::span<const int32_t> tokens, int32_t adapter) const {
  if (!enabled_) return 0;
  const size_t ps = static_cast<size_t>(page_size());
  const RadixNode* node = find_root(adapter);
  if (node == nullptr) return 0;
  size_t pos = 0;
  while (tokens.size() - pos >= ps) {
    auto it = node->children.find(first_page(tokens.subspan(pos)));
    if (it == node->children.end()) break;
    const size_t k = common_pages(*it->second, tokens.subspan(pos));
    pos += k * ps;
    if (k * ps < it->second->key.size()) break;
    node = it->second.get();
  }
  return static_cast<int64_t>(pos);
}

void RadixCache::lock(RadixNode* node) {
  for (; node != nullptr && node != root_.get(); node = node->parent) {
    if (node->lock_ref == 0) evictable_pages_ -= static_cast<int32_t>(node->pages.size());
    ++node->lock_ref;
  }
}

void RadixCache::unlock(RadixNode* node) {
  for (; node != nullptr && node != root_.get(); node = node->parent) {
    if (node->lock_ref <= 0) throw std::logic_error("RadixCache::unlock: node is not locked");
    --node->lock_ref;
    if (node->lock_ref == 0) evictable_pages_ += static_cast<int32_t>(node->pages.size());
  }
}

int32_t RadixCache::insert(std::span<const int32_t> key, std::span<const int32_t> pages,
                           int32_t adapter) {
  const size_t ps = static_cast<size_t>(page_size());
  const uint64_t now = ++clock_;
  RadixNode* node = adapter_root(adapter);
  size_t pos = 0;
  while (pos < key.size()) {
    auto it = node->children.find(first_page(key.subspan(pos)));
    if (it == node->children.end()) {
      auto leaf = std::make_unique<RadixNode>();
      leaf->key.assign(key.begin() + pos, key.end());
      leaf->pages.assign(pages.begin() + pos / ps, pages.end());
      leaf->parent = node;
      leaf->last_access = now;
      const auto added = static_cast<int32_t>(leaf->pages.size());
      total_pages_ += added;
      evictable_pages_ += added;
      node->children.emplace(first_page(leaf->key), std::move(leaf));
      break;
    }
    RadixNode* child = it->second.get();
    const size_t k = common_pages(*child, key.subspan(pos));
    if (k * ps < child->key.size()) child = split(child, k);
    child->last_access = now;
    pos += k * ps;
    node = child;
  }
  // Pages that were already present: everything up to where a new leaf began (or all of them).
  size_t existing = 0;
  for (RadixNode* n = node; n != root_.get(); n = n->parent) existing += n->pages.size();
  return static_cast<int32_t>(std::min(existing, pages.size()));
}

void RadixCache::release(std::span<const int32_t> tokens, std::span<const int32_t> pages,
                         int32_t num_cached_pages, RadixNode* locked, bool insert_tokens,
                         int32_t adapter) {
  const size_t aligned_pages = tokens.size() / static_cast<size_t>(page_size());
  if (pages.size() < aligned_pages || num_cached_pages < 0 ||
      static_cast<size_t>(num_cached_pages) > pages.size()) {
    throw std::logic_error("RadixCache::release: pages do not cover the tokens");
  }
  size_t first_owned = static_cast<size_t>(num_cached_pages);
  if (enabled_ && insert_tokens && aligned_pages > 0) {
    const size_t existing = static_cast<size_t>(insert(
        tokens.first(aligned_pages * page_size()), pages.first(aligned_pages), adapter));
    // [num_cached, existing): duplicates of pages another request inserted meanwhile.
    if (existing > first_owned) pool_.free(pages.subspan(first_owned, existing - first_owned));
    first_owned = std::max(first_owned, aligned_pages);  // [existing, aligned): adopted by the tree
  }
  if (first_owned < pages.size()) pool_.free(pages.subspan(first_owned));
  unlock(locked);
}

std::vector<int32_t> RadixCache::cache_unfinished(std::span<const int32_t> tokens,
                                                  std::span<const int32_t> pages,
                                                  int32_t num_cached_pages, RadixNode* locked,
                                                  PrefixMatch* match, int32_t adapter) {
  const size_t aligned_pages = tokens.size() / static_cast<size_t>(page_size());
  if (!enabled_ || aligned_pages == 0) {
    if (match != nullptr) {
      match->node = locked;
      match->num_tokens = static_cast<int64_t>(num_cached_pages) * page_size();
      match->pages.assign(pages.begin(), pages.begin() + num_cached_pages);
    }
    return std::vector<int32_t>(pages.begin(), pages.end());
  }
  const auto aligned = tokens.first(aligned_pages * page_size());
  const size_t existing = static_cast<size_t>(insert(aligned, pages.first(aligned_pages), adapter));
  const size_t first_owned = static_cast<size_t>(num_cached_pages);
  if (existing > first_owned) pool_.free(pages.subspan(first_owned, existing - first_owned));
  PrefixMatch m = match_prefix(aligned, adapter);
  lock(m.node);
  unlock(locked);
  std::vector<int32_t> out = m.pages;
  out.insert(out.end(), pages.begin() + aligned_pages, pages.end());
  if (match != nullptr) *match = std::move(m);
  return out;
}

int32_t RadixCache::evict(int32_t num_pages) {
  auto older = [](const RadixNode* a, const RadixNode* b) { return a->last_access > b->last_access; };
  std::priority_queue<RadixNode*, std::vector<RadixNode*>, decltype(older)> leaves(older);
  // Collect unlocked leaves.
  std::vector<RadixNode*> stack{root_.get()};
  while (!stack.empty()) {
    RadixNode* n = stack.back();
    stack.pop_back();
    if (n->children.empty() && n != root_.get() && n->lock_ref == 0) leaves.push(n);
    for (auto& [k, c] : n->children) stack.push_back(c.get());
  }
  int32_t freed = 0;
  while (freed < num_pages && !leaves.empty()) {
    RadixNode* leaf = leaves.top();
    leaves.pop();
    pool_.free(leaf->pages);
    const auto n = static_cast<int32_t>(leaf->pages.size());
    freed += n;
    total_pages_ -= n;
    evictable_pages_ -= n;
    RadixNode* parent = leaf->parent;
    parent->children.erase(first_page(leaf->key));  // destroys leaf
    if (parent != root_.get() && parent->children.empty() && parent->lock_ref == 0) {
      leaves.push(parent);
    }
  }
  return freed;
}

}  // namespace sable::scheduler
