// Private to core/scheduler: the state behind Scheduler, shared by scheduler.cpp (thread, public
// API, control tasks) and scheduler_step.cpp (one batching step). Everything below `loop-owned` is
// touched only by the scheduler thread; the rest is guarded by `mutex`.
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>

#include "core/sampling/sampler.h"
#include "core/scheduler/page_allocator.h"
#include "core/scheduler/radix_cache.h"
#include "core/scheduler/scheduler.h"
#include "core/scheduler/side_worker.h"

namespace sable::scheduler {

using Clock = std::chrono::steady_clock;

// A request inside the scheduler.
struct Active {
  Request req;
  std::vector<int32_t> tokens;  // prompt + output so far
  // With images: `tokens` as the radix cache keys them (request_images.h), kept the same length.
  std::vector<int32_t> image_key;
  int64_t prompt_len = 0;
  std::vector<int32_t> pages;   // cover kv_len (+ the tokens of the step in flight)
  int32_t num_cached_pages = 0; // leading pages that belong to the radix tree (locked)
  RadixNode* locked = nullptr;
  int64_t kv_len = 0;           // tokens whose KV is in `pages`
  bool prefill_done = false;    // all tokens but the newest have KV: decoding
  bool admitted_once = false;
  bool input_logprobs_done = false;
  int64_t cached_tokens = 0;    // prefix hit reported to the client (first admission)
  int32_t retractions = 0;
  StreamChunk pending;          // output not yet pushed (stream_interval)
  int32_t pending_steps = 0;
  Clock::time_point last_token_time{};
  bool has_first_token = false;
  std::vector<uint32_t> mask;   // grammar mask of the step in flight (constrained requests)

  // Tokens the next forward runs: 1 for a decode, more after a jump-forward appended tokens.
  int64_t tokens_to_run() const { return static_cast<int64_t>(tokens.size()) - kv_len; }

  // The radix cache's view of `tokens`.
  std::span<const int32_t> key() const { return req.images ? image_key : tokens; }
  void append_token(int32_t t) {
    tokens.push_back(t);
    if (req.images) image_key.push_back(t);
  }
  int64_t num_output() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
  int64_t max_new_tokens(int64_t context_length) const {
    const int64_t room = context_length - prompt_len;
    return req.params.max_new_tokens ? std::min<int64_t>(*req.params.max_new_tokens, room) : room;
  }
};

// The request's prompt log-probabilities are still to be computed (they need its prompt rows).
inline bool wants_input_logprobs(const Active& a) {
  const auto& lp = a.req.logprobs;
  return lp.return_logprob && lp.logprob_start_len >= 0 && lp.logprob_start_len < a.prompt_len &&
         !a.input_logprobs_done;
}

// A prefill chunk of one step: `n` tokens of `a` starting at a->kv_len.
struct PrefillChunk {
  Active* a;
  int32_t n;
};

// A jump-forward's forced tokens per row of the batch below which a backend that replays decode
// graphs decodes them instead (the eager step costs the batch more than the jump saves). From one
// H200 run (bench/NOTES.md v10: 8B, 32 rows, jumps on 0.931 vs off 0.951 of unconstrained).
constexpr double kJumpCostPerRow = 0.15;

struct Scheduler::Impl {
  Impl(const SchedulerOptions& o, ModelBackend& b, const SableSamplerApi* s);

  // ---- guarded by mutex
  mutable std::mutex mutex;
  std::condition_variable cv;
  std::vector<Request> inbox;
  std::vector<std::string> abort_rids;
  std::optional<FinishReason> abort_everything;  // abort_all's reason, until the loop applies it
  std::deque<std::packaged_task<void()>> tasks;
  bool stop = false;
  SchedulerStats stats;
  std::function<void(const StepInfo&)> step_observer;
  std::thread thread;

  // ---- loop-owned
  SchedulerOptions opts;
  ModelBackend& backend;
  sampling::Sampler sampler;
  SideWorkers mask_workers;  // fill grammar masks during the forward (scheduler_step.cpp)
  // Share the sampled tokens' grammar steps (accept, jump-forward query) with this thread, when
  // share_grammar_rows (SABLE_GRAMMAR_SHARE=1 in the environment; off by default).
  SideWorkers grammar_workers;
  bool share_grammar_rows = false;
  int32_t jump_cap = 1;      // most tokens one jump-forward appends (the runner's batch bound)
  PageAllocator pool;
  RadixCache cache;
  std::list<std::unique_ptr<Active>> running;  // admitted, in admission order
  std::deque<std::unique_ptr<Active>> waiting;
  double new_token_ratio = 0.7;
  double init_ratio = 0.7;
  double min_ratio = 0.098;
  std::mt19937_64 rng;
  SchedulerStats counters;  // cumulative counters, copied into `stats` after each step
  // This loop cycle's step ran a forward, which took cycle_model_seconds with the sampling: both
  // are added to the counters with the cycle's time, so a reader never sees one without the other.
  bool ran_forward = false;
  double cycle_model_seconds = 0.0;

  void loop();
  void step();  // scheduler_step.cpp
  void publish_stats();
  void apply_aborts(std::vector<std::string> rids);
  void finish(Active& a, FinishReason reason, bool insert_into_cache);
  void flush_pending(Active& a);
  void abort_everything_now(const std::string& message, int32_t status);

  // scheduler_step.cpp / scheduler_admit.cpp
  int32_t retract_for_decode(std::vector<Active*>& decode);
  bool admit(Active& a, int32_t budget, int32_t* chunk_tokens);
  // Longest prefix of `a` that may come from the cache (at least one token must run; prompt
  // log-probabilities need their positions recomputed).
  int64_t match_limit(const Active& a) const;
  // In-batch prefix caching: true when `a` shares a long prefix, not yet cached, with a chunk
  // already in this step's batch; `a` then waits a step and reuses that chunk's pages.
  bool defer_for_shared_prefix(const Active& a, std::span<const PrefillChunk> batch) const;
  // After `a`'s prefill chunk ran: its page-aligned computed prefix goes into the radix tree,
  // still locked by `a` (SGLang's cache_unfinished_req); `a` adopts the tree's pages.
  void cache_prefill_progress(Active& a);
  void order_waiting();
  // scheduler_output.cpp: what a sampled token does to its request. First its grammar's step
  // (grammar_step: it touches only `a`, so the rows of a step may take it on several threads),
  // then process_sample with that step's outcome.
  struct GrammarStep {
    bool accepted = true;        // false: the grammar rejected the sampled token
    std::vector<int32_t> jump;   // the tokens replacing it (jump-forward), empty: none
  };
  GrammarStep grammar_step(Active& a, int32_t t);
  void process_sample(Active& a, const SableSampleResult& res, GrammarStep grammar,
                      const std::vector<int32_t>& top_ids, const std::vector<float>& top_lps,
                      const std::vector<float>& ids_lps);
  // Appends one output token and applies the stop conditions; true when `a` finished.
  bool emit_token(Active& a, int32_t token, PositionLogprobs* logprobs);
  // The tokens that replace sampled token `t` when a's grammar forces text after it (empty: no
  // jump; the grammar then stays just past `t`).
  std::vector<int32_t> jump_forward(Active& a, int32_t t);
  // return_hidden_states: rows [first_row, first_row + rows) of the forward's hidden states.
  void collect_hidden_states(Active& a, const ModelBackend::Logits& out, int64_t first_row,
                             int64_t rows, bool prefill);
  void collect_input_logprobs(Active& a, const float* rows, int64_t num_rows, int64_t first_pos,
                              int32_t vocab);
  bool reject_if_unfittable(Active& a);
};

}  // namespace sable::scheduler
