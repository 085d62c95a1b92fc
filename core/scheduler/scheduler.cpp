// The scheduler thread and its public API (see scheduler.h). One batching step lives in
// scheduler_step.cpp.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "core/scheduler/scheduler_impl.h"
#include "core/util/log.h"

namespace sable::scheduler {

namespace {

constexpr int32_t kMaxJumpTokens = 64;        // most tokens one jump-forward appends
constexpr int32_t kMinMaskRowsPerThread = 4;  // a thread hand-off costs about a few cached masks

// Mask threads: a quarter of the cores, 1 to 8 (the rest run the HTTP server, detokenization and,
// on the CPU device, the model).
int32_t mask_threads() {
  const auto cores = static_cast<int32_t>(std::thread::hardware_concurrency());
  return std::clamp(cores / 4, 1, 8);
}

SchedulerOptions checked(SchedulerOptions o) {
  if (o.num_pages <= 0) throw std::invalid_argument("scheduler: num_pages must be positive");
  if (o.page_size <= 0) throw std::invalid_argument("scheduler: page_size must be positive");
  if (o.vocab_size <= 0) throw std::invalid_argument("scheduler: vocab_size must be positive");
  if (o.context_length <= 1) throw std::invalid_argument("scheduler: context_length must be > 1");
  if (o.max_running_requests <= 0) o.max_running_requests = 256;
  if (o.stream_interval <= 0) o.stream_interval = 1;
  if (o.max_prefill_tokens <= 0) o.max_prefill_tokens = 16384;
  const std::string& p = o.schedule_policy;
  if (p != "fcfs" && p != "lpm" && p != "random" && p != "lof") {
    throw std::invalid_argument("Unknown schedule_policy: '" + p + "' (fcfs, lpm, random, lof)");
  }
  return o;
}

// A request's last chunk. Its LoRA hold is dropped first: whoever reads the chunk may unload the
// adapter at once, although the finished request leaves the running set only at the end of the step.
void push_last(Request& r, StreamChunk c) {
  r.lora_hold.reset();
  r.stream->push(std::move(c));
}

}  // namespace

Scheduler::Impl::Impl(const SchedulerOptions& o, ModelBackend& b, const SableSamplerApi* s)
    : opts(checked(o)),
      backend(b),
      sampler(s),
      mask_workers(mask_threads(), kMinMaskRowsPerThread),
      grammar_workers(mask_threads(), 1),
      pool(static_cast<int32_t>(opts.num_pages), opts.page_size),
      cache(pool, !opts.disable_radix_cache),
      rng(opts.random_seed) {
  init_ratio = opts.init_new_token_ratio >= 0
                   ? opts.init_new_token_ratio
                   : std::min(0.7 * opts.schedule_conservativeness, 1.0);
  min_ratio = init_ratio * 0.14;
  new_token_ratio = init_ratio;
  const char* share = std::getenv("SABLE_GRAMMAR_SHARE");
  share_grammar_rows = share != nullptr && std::string_view(share) == "1";
  // The runner sizes a forward for the token budget plus one token per request: a jump may add
  // the budget's share of one request, so a step of jumps stays inside it.
  const int32_t budget =
      opts.chunked_prefill_size > 0 ? opts.chunked_prefill_size : opts.max_prefill_tokens;
  jump_cap = std::clamp(budget / opts.max_running_requests, 1, kMaxJumpTokens);
}

Scheduler::Scheduler(const SchedulerOptions& options, ModelBackend& backend,
                     const SableSamplerApi* sampler_api)
    : impl_(std::make_unique<Impl>(options, backend, sampler_api)) {
  impl_->publish_stats();
  impl_->thread = std::thread([this] { impl_->loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

void Scheduler::submit(Request request) {
  if (!request.stream) throw std::invalid_argument("scheduler: request without a stream");
  if (request.input_ids.empty()) throw std::invalid_argument("input_ids cannot be empty.");
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->stop) throw std::runtime_error("scheduler: the engine has been shut down");
  impl_->inbox.push_back(std::move(request));
  impl_->cv.notify_all();
}

void Scheduler::abort(const std::string& rid) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->abort_rids.push_back(rid);
  impl_->cv.notify_all();
}

void Scheduler::abort_all(std::string message, int32_t status_code) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->abort_everything = FinishReason::abort(std::move(message), status_code);
  impl_->cv.notify_all();
}

void Scheduler::run_exclusive(std::function<void()> task) {
  std::packaged_task<void()> t(std::move(task));
  std::future<void> done = t.get_future();
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->stop) throw std::runtime_error("scheduler: the engine has been shut down");
    impl_->tasks.push_back(std::move(t));
    impl_->cv.notify_all();
  }
  done.get();
}

bool Scheduler::flush_cache() {
  bool flushed = false;
  run_exclusive([&] {
    Impl& s = *impl_;
    if (!s.running.empty() || !s.waiting.empty()) return;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      if (!s.inbox.empty()) return;
    }
    s.cache.flush();
    flushed = true;
    s.publish_stats();
  });
  return flushed;
}

void Scheduler::set_step_observer(std::function<void(const StepInfo&)> observer) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->step_observer = std::move(observer);
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stop = true;
    impl_->cv.notify_all();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

// ---------------------------------------------------------------------------------------------

void Scheduler::Impl::loop() {
  while (true) {
    std::vector<Request> incoming;
    std::vector<std::string> aborts;
    std::optional<FinishReason> all;
    std::deque<std::packaged_task<void()>> todo;
    {
      std::unique_lock<std::mutex> lock(mutex);
      const bool busy = !running.empty() || !waiting.empty();
      if (!busy) {
        cv.wait(lock, [&] {
          return stop || !inbox.empty() || !abort_rids.empty() || abort_everything.has_value() ||
                 !tasks.empty();
        });
      }
      if (stop) break;
      incoming.swap(inbox);
      aborts.swap(abort_rids);
      all.swap(abort_everything);
      todo.swap(tasks);
    }
    const auto cycle_start = std::chrono::steady_clock::now();
    ran_forward = false;
    for (Request& r : incoming) {
      auto a = std::make_unique<Active>();
      a->prompt_len = static_cast<int64_t>(r.input_ids.size());
      a->tokens = r.input_ids;
      if (r.images) a->image_key = r.images->cache_key(a->tokens);
      a->req = std::move(r);
      if (reject_if_unfittable(*a)) continue;
      waiting.push_back(std::move(a));
    }
    if (all) abort_everything_now(all->message, all->status_code);
    if (!aborts.empty()) apply_aborts(std::move(aborts));
    for (auto& t : todo) t();  // exceptions are stored in the task's future
    if (!running.empty() || !waiting.empty()) {
      try {
        step();
      } catch (const std::exception& e) {
        // A failing forward (plugin error, bad input that slipped through) ends the requests in
        // flight with a 500-style abort instead of killing the thread.
        log::error("scheduler: step failed: {}", e.what());
        abort_everything_now(std::string("internal error: ") + e.what(), 500);
      }
    } else {
      new_token_ratio = init_ratio;  // idle: reset the admission estimate
    }
    if (ran_forward) {
      counters.cycle_time_sum +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - cycle_start).count();
      counters.model_time_sum += cycle_model_seconds;
      counters.timed_cycles += 1;
    }
    publish_stats();
  }
  // Shutdown: everything in flight ends with an abort; queued control tasks still run.
  abort_everything_now("the engine is shutting down", 503);
  std::deque<std::packaged_task<void()>> todo;
  std::vector<Request> incoming;
  {
    std::lock_guard<std::mutex> lock(mutex);
    todo.swap(tasks);
    incoming.swap(inbox);
  }
  for (Request& r : incoming) {
    StreamChunk c;
    c.finish = FinishReason::abort("the engine is shutting down", 503);
    c.prompt_tokens = static_cast<int64_t>(r.input_ids.size());
    push_last(r, std::move(c));
  }
  for (auto& t : todo) t();
  publish_stats();
}

bool Scheduler::Impl::reject_if_unfittable(Active& a) {
  const int64_t len = a.prompt_len;
  std::string why;
  if (len >= opts.context_length) {
    why = "The input (" + std::to_string(len) + " tokens) is longer than the model's context length (" +
          std::to_string(opts.context_length) + " tokens).";
  } else if (pool.pages_for(len + 1) > pool.num_pages()) {
    why = "The input (" + std::to_string(len) + " tokens) does not fit in the KV cache pool (" +
          std::to_string(int64_t{pool.num_pages()} * pool.page_size()) + " tokens).";
  } else {
    return false;
  }
  StreamChunk c;
  c.prompt_tokens = len;
  c.finish = FinishReason::abort(why, 400);
  push_last(a.req, std::move(c));
  return true;
}

void Scheduler::Impl::apply_aborts(std::vector<std::string> rids) {
  std::unordered_set<std::string> set(rids.begin(), rids.end());
  auto hit = [&](const Active& a) { return set.count(a.req.rid) > 0; };
  for (auto it = running.begin(); it != running.end();) {
    if (hit(**it)) {
      finish(**it, FinishReason::abort("Aborted by request"), /*insert_into_cache=*/false);
      it = running.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = waiting.begin(); it != waiting.end();) {
    if (hit(**it)) {
      finish(**it, FinishReason::abort("Aborted by request"), false);
      it = waiting.erase(it);
    } else {
      ++it;
    }
  }
}

void Scheduler::Impl::abort_everything_now(const std::string& message, int32_t status) {
  for (auto& a : running) finish(*a, FinishReason::abort(message, status), false);
  running.clear();
  for (auto& a : waiting) finish(*a, FinishReason::abort(message, status), false);
  waiting.clear();
}

void Scheduler::Impl::flush_pending(Active& a) {
  StreamChunk c = std::move(a.pending);
  a.pending = StreamChunk{};
  a.pending_steps = 0;
  c.prompt_tokens = a.prompt_len;
  c.completion_tokens = a.num_output();
  c.cached_tokens = a.cached_tokens;
  c.num_retractions = a.retractions;
  if (c.finish) {
    push_last(a.req, std::move(c));
  } else {
    a.req.stream->push(std::move(c));
  }
}

void Scheduler::Impl::finish(Active& a, FinishReason reason, bool insert_into_cache) {
  // Give the KV back: finished sequences stay in the radix tree (when enabled), aborted and
  // failed ones are freed outright.
  if (!a.pages.empty() || a.locked != nullptr) {
    const auto kv = a.key().first(static_cast<size_t>(a.kv_len));
    cache.release(kv, a.pages, a.num_cached_pages, a.locked, insert_into_cache, a.req.lora_id);
  }
  a.pages.clear();
  a.locked = nullptr;
  a.num_cached_pages = 0;
  if (a.req.decoder && reason.type != FinishReason::Type::kAbort && !reason.matched_text) {
    a.pending.text += a.req.decoder->finish();
  }
  const double e2e = std::chrono::duration<double>(Clock::now() - a.req.created).count();
  a.pending.finish = std::move(reason);
  a.pending.e2e_latency = e2e;
  counters.finished_requests += 1;
  counters.e2e_sum += e2e;
  // The counters first: a client that reads /server_info as soon as its answer arrives sees the
  // steps and tokens that produced it (the end-of-step publish comes after the stream's last chunk).
  publish_stats();
  flush_pending(a);
}

void Scheduler::Impl::publish_stats() {
  SchedulerStats s = counters;
  s.running = static_cast<int32_t>(running.size());
  s.total_pages = pool.num_pages();
  s.free_pages = pool.num_free();
  s.cached_pages = cache.total_pages();
  s.evictable_pages = cache.evictable_pages();
  s.page_size = pool.page_size();
  s.kv_usage = static_cast<double>(pool.num_used() - cache.evictable_pages()) / pool.num_pages();
  s.new_token_ratio = new_token_ratio;
  s.cache_hit_rate =
      s.prompt_tokens > 0 ? static_cast<double>(s.cached_tokens) / s.prompt_tokens : 0.0;
  std::lock_guard<std::mutex> lock(mutex);
  s.queued = static_cast<int32_t>(waiting.size() + inbox.size());
  stats = s;
}

}  // namespace sable::scheduler
