// Admission side of a scheduler step: the waiting queue's policy order, radix-prefix matching,
// in-batch prefix caching (defer a request whose uncached prefix a batch chunk is computing),
// caching a prefill chunk's computed prefix, and the optimistic page accounting of a new chunk.
#include <algorithm>
#include <cmath>

#include "core/scheduler/scheduler_impl.h"

namespace sable::scheduler {
namespace {

constexpr int64_t kClipMaxNewTokens = 4096;  // SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION
constexpr size_t kLpmQueueLimit = 128;       // lpm falls back to fcfs past this queue length
// In-batch prefix caching (SGLang's IN_BATCH_PREFIX_CACHING thresholds): a waiting request that
// shares at least this many uncached tokens with a chunk already in the batch waits a step.
constexpr int64_t kInBatchPrefixTokens = 32;

}  // namespace

void Scheduler::Impl::order_waiting() {
  const std::string& policy = opts.schedule_policy;
  if (waiting.size() < 2 || policy == "fcfs") return;
  if (policy == "lpm") {
    if (!cache.enabled() || waiting.size() > kLpmQueueLimit) return;  // fcfs fallback
    std::vector<std::pair<int64_t, size_t>> keyed;
    for (size_t i = 0; i < waiting.size(); ++i) {
      keyed.emplace_back(cache.peek_prefix_length(waiting[i]->key(), waiting[i]->req.lora_id), i);
    }
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::deque<std::unique_ptr<Active>> sorted;
    for (const auto& k : keyed) sorted.push_back(std::move(waiting[k.second]));
    waiting.swap(sorted);
  } else if (policy == "random") {
    std::shuffle(waiting.begin(), waiting.end(), rng);
  } else if (policy == "lof") {
    std::stable_sort(waiting.begin(), waiting.end(), [&](const auto& a, const auto& b) {
      return a->max_new_tokens(opts.context_length) > b->max_new_tokens(opts.context_length);
    });
  }
}


int64_t Scheduler::Impl::match_limit(const Active& a) const {
  int64_t limit = static_cast<int64_t>(a.tokens.size()) - 1;
  if (wants_input_logprobs(a)) {
    limit = std::min<int64_t>(limit, std::max<int32_t>(a.req.logprobs.logprob_start_len, 1) - 1);
  }
  return std::max<int64_t>(limit, 0);
}

bool Scheduler::Impl::defer_for_shared_prefix(const Active& a,
                                              std::span<const PrefillChunk> batch) const {
  if (!cache.enabled() || batch.empty()) return false;
  const auto mine = a.key().first(static_cast<size_t>(match_limit(a)));
  size_t shared = 0;
  for (const PrefillChunk& c : batch) {
    if (c.a->req.lora_id != a.req.lora_id) continue;  // another adapter's KV is not reusable
    // What the chunk's request will have in its KV after this step.
    const size_t computed = static_cast<size_t>(c.a->kv_len + c.n);
    const size_t len = std::min(mine.size(), computed);
    const auto other = c.a->key();
    size_t k = 0;
    while (k < len && mine[k] == other[k]) ++k;
    shared = std::max(shared, k);
  }
  const int64_t ps = pool.page_size();
  const int64_t aligned = static_cast<int64_t>(shared) / ps * ps;  // reusable at page granularity
  if (aligned < kInBatchPrefixTokens) return false;
  return aligned - cache.peek_prefix_length(mine, a.req.lora_id) >= kInBatchPrefixTokens;
}

void Scheduler::Impl::cache_prefill_progress(Active& a) {
  if (!cache.enabled() || a.pages.empty()) return;
  const int64_t aligned_pages = a.kv_len / pool.page_size();
  if (aligned_pages <= a.num_cached_pages) return;  // no new whole page
  PrefixMatch m;
  const auto kv = a.key().first(static_cast<size_t>(a.kv_len));
  a.pages = cache.cache_unfinished(kv, a.pages, a.num_cached_pages, a.locked, &m, a.req.lora_id);
  a.locked = m.node;
  a.num_cached_pages = static_cast<int32_t>(m.pages.size());
}

bool Scheduler::Impl::admit(Active& a, int32_t budget, int32_t* chunk_tokens) {
  const int64_t total = static_cast<int64_t>(a.tokens.size());
  const bool fresh = a.pages.empty() && a.locked == nullptr;
  PrefixMatch m;
  if (fresh) {
    m = cache.match_prefix(a.key().first(static_cast<size_t>(match_limit(a))), a.req.lora_id);
    // Optimistic admission (SGLang): the running requests keep a ratio of their remaining
    // tokens in reserve; the new one is charged its whole prompt plus its output, clipped.
    if (!running.empty()) {
      double reserved_tokens = 0;
      for (const auto& r : running) {
        const int64_t left = r->max_new_tokens(opts.context_length) - r->num_output();
        reserved_tokens += static_cast<double>(std::min(std::max<int64_t>(left, 0),
                                                        kClipMaxNewTokens)) * new_token_ratio;
      }
      const int64_t available = pool.num_free() + cache.evictable_pages() -
                                static_cast<int64_t>(std::ceil(reserved_tokens / pool.page_size()));
      const int64_t own_out =
          std::min(std::max<int64_t>(a.max_new_tokens(opts.context_length) - a.num_output(), 0),
                   kClipMaxNewTokens);
      const int64_t need = pool.pages_for(total) - static_cast<int64_t>(m.pages.size()) +
                           pool.pages_for(own_out);
      if (need > available) return false;
    }
  }
  const int64_t start = fresh ? m.num_tokens : a.kv_len;
  const int64_t remaining = total - start;
  int64_t n = remaining;
  if (opts.chunked_prefill_size > 0) {
    n = std::min<int64_t>(remaining, budget);
    if (n < remaining && pool.page_size() > 1) n = n / pool.page_size() * pool.page_size();
  } else if (remaining > budget && !fresh) {
    n = budget;
  }
  if (n <= 0) return false;
  const int64_t have = fresh ? static_cast<int64_t>(m.pages.size())
                             : static_cast<int64_t>(a.pages.size());
  const int64_t need = std::max<int64_t>(pool.pages_for(start + n) - have, 0);
  // Lock the matched prefix before evicting, so eviction cannot take it.
  if (fresh) cache.lock(m.node);
  if (need > pool.num_free()) cache.evict(static_cast<int32_t>(need - pool.num_free()));
  auto fresh_pages = pool.allocate(static_cast<int32_t>(need));
  if (!fresh_pages) {
    if (fresh) cache.unlock(m.node);
    return false;
  }
  if (fresh) {
    a.locked = m.node;
    a.pages = m.pages;
    a.num_cached_pages = static_cast<int32_t>(m.pages.size());
    a.kv_len = m.num_tokens;
    if (!a.admitted_once) {
      a.admitted_once = true;
      a.cached_tokens = m.num_tokens;
      counters.prompt_tokens += a.prompt_len;
      counters.cached_tokens += m.num_tokens;
    }
  }
  a.pages.insert(a.pages.end(), fresh_pages->begin(), fresh_pages->end());
  *chunk_tokens = static_cast<int32_t>(n);
  return true;
}

}  // namespace sable::scheduler
