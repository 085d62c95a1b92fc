// The embedding executor of an is_embedding Engine: a queue and one worker thread that batches
// queued prompts into prefill-only forwards and turns each prompt into one vector: its hidden
// states pooled (last token, first token, or the mean over its tokens; optionally L2-normalised),
// or, for a score model (sequence classifier, reward model, cross-encoder), its score row.
//
// Why not the scheduler: the scheduler samples from logits and owns the prefix cache; an embedding
// needs neither. The model runner is not reentrant and the scheduler thread owns it, so every
// forward of this class runs through `exclusive` (the scheduler's run_exclusive: the task runs on
// the scheduler thread between two steps). Weight swaps and expert-recording toggles take the same
// path, so nothing ever touches the runner concurrently.
//
// KV pages: an embedding engine never admits a generation request, so the scheduler holds no
// page and the whole pool [0, num_pages) belongs to this class. Each sequence of a batch gets its
// own contiguous run of pages, counted from page 0 again for every batch (nothing is cached).
//
// Batching: the worker takes queued prompts in order while the batch stays within max_seqs,
// max_batch_tokens and the pool's pages. A prompt longer than max_batch_tokens runs alone, in
// chunks of max_batch_tokens (num_cached grows): the last token comes from the last chunk, the
// first from the first, the mean sums every chunk's rows. An encoder (Mode::whole) has no cache to
// chunk over: such a prompt is refused at submit().
//
// Thread-safety: submit() and stats() may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/engine/pooling.h"

namespace sable::runner {
class ModelRunner;
}

namespace sable::engine {

class Embedder {
 public:
  struct Limits {
    int64_t max_batch_tokens = 8192;  // new tokens per forward (the runner's max_batch_tokens)
    int32_t max_seqs = 256;           // sequences per forward (the runner's max_seqs)
    int64_t num_pages = 0;            // the runner's KV pool
    int32_t page_size = 1;
  };
  // What the engine's model gives and how it is pooled.
  struct Mode {
    PoolingKind pooling = PoolingKind::kLast;  // hidden-state pooling (embedding models)
    bool scores = false;       // a score model: the output is its score row, never normalised
    bool first_token = false;  // scores: read at the first token (BERT-family classifiers)
    bool whole = false;        // an encoder: every prompt runs whole in one forward
  };
  // Runs a task while nothing else uses the runner; rethrows the task's exception.
  using Exclusive = std::function<void(std::function<void()>)>;
  // The runner to use now (called inside an exclusive task: it may have been swapped).
  using RunnerRef = std::function<runner::ModelRunner&()>;

  struct Output {
    std::vector<float> embedding;  // [hidden_size], or [num_labels] for a score model
  };
  struct Stats {
    int32_t queued = 0;
    int32_t running = 0;
    int64_t prompt_tokens = 0;      // cumulative, finished prompts
    int64_t finished_requests = 0;  // cumulative
    int64_t num_forwards = 0;       // cumulative
  };

  // Starts the worker. `limits` must describe the runner (a prompt that needs more pages than the
  // pool is the caller's to reject; submit() throws std::invalid_argument for it).
  Embedder(Exclusive exclusive, RunnerRef runner, Limits limits, Mode mode);
  ~Embedder();  // shutdown()
  Embedder(const Embedder&) = delete;
  Embedder& operator=(const Embedder&) = delete;

  // Queues one prompt (ids already validated against the vocabulary and the context length;
  // token_types empty or one per id). The future holds the embedding, or the forward's exception.
  // Throws std::runtime_error after shutdown, std::invalid_argument for an empty prompt, one
  // larger than the KV pool, or (an encoder) one longer than a forward.
  // dimensions > 0 keeps the first `dimensions` values before normalising (Matryoshka).
  std::future<Output> submit(std::vector<int32_t> ids, bool normalize,
                             std::vector<int32_t> token_types = {}, int64_t dimensions = 0);

  // Finishes the batch in flight, fails what is still queued (std::runtime_error), joins the
  // worker. Idempotent. Must run before the scheduler behind `exclusive` stops.
  void shutdown();

  Stats stats() const;

 private:
  struct Item {
    std::vector<int32_t> ids;
    std::vector<int32_t> token_types;
    bool normalize = true;
    int64_t dimensions = 0;
    std::promise<Output> promise;
  };

  void loop();
  // Takes the next batch off the queue (lock held); empty when stopping.
  std::vector<Item> take_batch();
  // Runs one batch and fulfils its promises.
  void run_batch(std::vector<Item>& batch);
  // One long prompt in chunks of max_batch_tokens; returns its vector before normalisation.
  std::vector<float> run_chunked(runner::ModelRunner& r, const Item& item,
                                 std::span<const int32_t> pages, int64_t& forwards) const;
  int64_t pages_for(size_t tokens) const {
    return (static_cast<int64_t>(tokens) + limits_.page_size - 1) / limits_.page_size;
  }

  Exclusive exclusive_;
  RunnerRef runner_;
  Limits limits_;
  Mode mode_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  int32_t running_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t finished_ = 0;
  int64_t forwards_ = 0;
  std::thread worker_;
};

}  // namespace sable::engine
