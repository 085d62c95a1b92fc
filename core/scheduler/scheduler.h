// The scheduler: one thread that owns the KV page accounting and runs continuous batching.
//
// Each step it (1) applies aborts and queued control tasks, (2) makes room for one more token per
// decoding request (evicting cached prefixes, then retracting the requests with the fewest
// generated tokens back to the queue), (3) admits waiting requests in policy order (fcfs, lpm, random,
// lof) under max_running_requests, the free pages and the per-step token budget
// (chunked_prefill_size; a longer prompt is prefilled in chunks, one chunked request at a time);
// a request sharing a long uncached prefix with a chunk already in the batch waits one step
// (in-batch prefix caching), (4) runs prefill chunks and decode steps in ONE forward (mixed batch;
// a decode whose grammar forced several tokens last step extends by all of them at once),
// then caches every computed prefill prefix in the radix tree (locked by its request) so the next
// admissions reuse it, (5) samples, appends the tokens of text a grammar forces next
// (jump-forward), checks stop conditions, streams chunks, and leaves finished sequences in the radix
// cache. Requests of different LoRA adapters share one batch (at most
// max_loras_per_batch adapters among the running requests) but never a cached prefix.
// See /work/shared/spec/sglang_api.md section 7 for the SGLang behaviour this follows.
//
// Thread-safety: every public method may be called from any thread. The model backend and the
// sampler are only used on the scheduler thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/scheduler/request.h"
#include "sable/sampler.h"

namespace sable::scheduler {

// What the scheduler needs from a model: a forward over paged sequences (the runner's contract).
class ModelBackend {
 public:
  struct Sequence {
    std::span<const int32_t> new_tokens;  // prefill chunk, or the 1 decode token
    int32_t num_cached = 0;               // tokens already in the KV pages
    std::span<const int32_t> pages;       // pages covering num_cached + new tokens
    bool all_logits = false;              // logits for every new token (else the last only)
    int32_t lora_id = 0;                  // the LoRA adapter of the sequence, 0: none
    bool want_hidden = false;             // also the final-norm hidden states of its rows
    // The request's images (null: none). The backend reads the M-RoPE positions of the rows it
    // runs, and on the first chunk that reaches an image computes `embeds` for all of them.
    RequestImages* images = nullptr;
  };
  struct Logits {
    int64_t rows = 0;            // per sequence: new_tokens.size() if all_logits, else 1
    int32_t vocab = 0;
    std::vector<float> data;     // [rows, vocab]; empty when on_device
    bool on_device = false;      // the logits stayed on the device: sample with sample_on_device
    int32_t hidden_size = 0;     // when some sequence wanted hidden states:
    std::vector<float> hidden;   // [rows, hidden_size], the same rows as the logits
  };
  virtual ~ModelBackend() = default;
  virtual Logits forward(std::span<const Sequence> seqs) = 0;
  // Whether decode-only steps replay captured graphs, so that a step in which one sequence runs
  // several tokens (a jump-forward) runs eagerly for the whole batch. The scheduler weighs jumps
  // by it.
  virtual bool replays_decode_graphs() const { return false; }
  // Whether forward(seqs) returns once the step is launched on the device, before it is computed
  // (sampling then waits for it). The scheduler hands the step's grammar masks to its workers
  // after such a launch, so that the hand-off (waking threads, which can preempt the scheduler
  // thread) does not delay the device; a forward that computes before returning gets them before.
  virtual bool forward_returns_at_launch(std::span<const Sequence> seqs) const {
    (void)seqs;
    return false;
  }
  // Runs fn(i) for every i in [0, n) on the host threads the backend computes with (the CPU ops'
  // thread pool), returning when all have run; the default runs them in order on the calling
  // thread. The scheduler samples host logits' rows with it. fn does not throw.
  virtual void parallel_rows(int64_t n, const std::function<void(int64_t)>& fn) {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
  // Samples rows `row_index` of the last forward's device logits (only called when that forward
  // returned on_device). rows/results: one per sampled row. Throws on failure.
  virtual void sample_on_device(std::span<const int64_t> row_index,
                                std::span<const SableSamplingRow> rows,
                                std::span<SableSampleResult> results) {
    (void)row_index;
    (void)rows;
    (void)results;
    throw std::logic_error("this model backend keeps no logits on a device");
  }
};

struct SchedulerOptions {
  int64_t num_pages = 0;              // KV pool size in pages (required)
  int32_t page_size = 1;
  int32_t vocab_size = 0;             // required
  int64_t context_length = 0;         // required: longest sequence (prompt + output)
  int32_t max_running_requests = 256;
  int32_t chunked_prefill_size = 8192;  // per-step token budget; <= 0: max_prefill_tokens, no chunking
  int32_t max_prefill_tokens = 16384;
  std::string schedule_policy = "fcfs";  // fcfs | lpm | random | lof
  double schedule_conservativeness = 1.0;
  double init_new_token_ratio = -1.0;  // < 0: min(0.7 * conservativeness, 1)
  bool disable_radix_cache = false;
  int32_t stream_interval = 1;         // decode steps between chunks (per-request override wins)
  uint64_t random_seed = 0;            // for the random policy
  // Distinct LoRA adapters the running requests may use at once (the adapter pool's slots); a
  // request of another adapter waits. 0: no limit.
  int32_t max_loras_per_batch = 0;
  // Jump-forward (SGLang's --disable-jump-forward turns it off): when a constrained request's
  // grammar forces text after a sampled token, its tokens are appended at once and their KV is
  // computed in the next step as a short extend, instead of one decode step per token.
  bool disable_jump_forward = false;
};

// What one forward contained (for tests and logs).
struct StepInfo {
  int32_t num_seqs = 0;
  int32_t num_decode = 0;
  int32_t num_prefill = 0;   // prefill chunks (new or continued)
  int32_t num_tokens = 0;    // new tokens in the forward
  int32_t num_retracted = 0; // requests sent back to the queue before this step
};

struct SchedulerStats {
  int32_t running = 0;        // admitted (prefilling or decoding)
  int32_t queued = 0;         // waiting for admission
  int64_t total_pages = 0;
  int64_t free_pages = 0;
  int64_t cached_pages = 0;   // held by the radix tree
  int64_t evictable_pages = 0;
  int32_t page_size = 1;
  double kv_usage = 0.0;      // (pages held by requests + locked prefix pages) / total
  double new_token_ratio = 0.0;
  int64_t prompt_tokens = 0;      // admitted prompt tokens (cumulative)
  int64_t cached_tokens = 0;      // of those, served from the radix cache
  int64_t generation_tokens = 0;  // output tokens, sampled or forced (cumulative)
  int64_t jump_forward_tokens = 0;  // of those, appended by jump-forward without a decode step
  double cache_hit_rate = 0.0;    // cached_tokens / prompt_tokens
  int64_t num_steps = 0;
  // Of those, steps in which some sequence ran more than one token (a prefill chunk, a jump's
  // extend): a runner that replays decode graphs runs them eagerly.
  int64_t extend_steps = 0;
  int32_t last_batch_size = 0;
  int32_t max_batch_size = 0;
  int64_t num_retractions = 0;
  int64_t finished_requests = 0;
  // Latency sums (seconds) for metrics: time to first token, inter-token latency, end-to-end.
  double ttft_sum = 0.0;
  int64_t ttft_count = 0;
  double itl_sum = 0.0;
  int64_t itl_count = 0;
  double e2e_sum = 0.0;
  // Where the scheduler thread's time goes (seconds, cumulative over the loop cycles that ran a
  // forward): the whole cycle (intake, batch building, forward, sampling, stop checks, streaming,
  // publishing), and of it the model's forward and sampling calls (on a GPU: the device's work,
  // waited for at the sampled tokens' copy back). (cycle - model) / cycles is the host work per
  // step that the device waits through: what an overlapped scheduler would hide.
  double cycle_time_sum = 0.0;
  double model_time_sum = 0.0;
  int64_t timed_cycles = 0;
};

class Scheduler {
 public:
  // `backend` must outlive the scheduler. `sampler_api` nullptr = the built-in sampler.
  // Starts the scheduler thread. Throws std::invalid_argument for bad options.
  Scheduler(const SchedulerOptions& options, ModelBackend& backend,
            const SableSamplerApi* sampler_api = nullptr);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. Its stream receives chunks; a request that can never fit (prompt longer than
  // the context or the pool) ends at once with an abort chunk. Throws std::runtime_error after
  // shutdown and std::invalid_argument for an empty prompt or missing stream.
  void submit(Request request);
  // Ends the request with finish_reason abort and frees its pages (no-op for unknown rids).
  void abort(const std::string& rid);
  // Ends every request in flight and queued with finish_reason abort, `message` and `status_code`
  // (0: a user abort, answered normally; 500/503: answered as that error).
  void abort_all(std::string message = "Aborted by request", int32_t status_code = 0);
  // Drops every unreferenced radix-cache entry; false (nothing done) while requests are running
  // or waiting. Blocks until the scheduler thread has handled it.
  bool flush_cache();
  // Runs `task` on the scheduler thread between two steps (the loop is paused meanwhile) and
  // returns when it has run; rethrows its exception. For weight updates.
  void run_exclusive(std::function<void()> task);
  // Called on the scheduler thread at the end of each step, which may be after that step's chunks
  // reached their readers: what it captures must outlive the Scheduler (or its shutdown()).
  void set_step_observer(std::function<void(const StepInfo&)> observer);

  SchedulerStats stats() const;
  // Stops the thread; requests in flight end with an abort chunk. Idempotent.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sable::scheduler
