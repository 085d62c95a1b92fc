// The embedding executor of an is_embedding Engine: a queue and one worker thread that batches
// queued prompts into prefill-only forwards with want_hidden, takes each prompt's last-token
// final-norm hidden state and pools it (last token, optionally L2-normalised).
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
// chunks of max_batch_tokens (num_cached grows), and takes its hidden state from the last chunk.
//
// Thread-safety: submit() and stats() may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

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
  // Runs a task while nothing else uses the runner; rethrows the task's exception.
  using Exclusive = std::function<void(std::function<void()>)>;
  // The runner to use now (called inside an exclusive task: it may have been swapped).
  using RunnerRef = std::function<runner::ModelRunner&()>;

  struct Output {
    std::vector<float> embedding;  // [hidden_size]
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
  Embedder(Exclusive exclusive, RunnerRef runner, Limits limits);
  ~Embedder();  // shutdown()
  Embedder(const Embedder&) = delete;
  Embedder& operator=(const Embedder&) = delete;

  // Queues one prompt (ids already validated against the vocabulary and the context length).
  // The future holds the embedding, or the forward's exception. Throws std::runtime_error after
  // shutdown, std::invalid_argument for an empty prompt or one larger than the KV pool.
  std::future<Output> submit(std::vector<int32_t> ids, bool normalize);

  // Finishes the batch in flight, fails what is still queued (std::runtime_error), joins the
  // worker. Idempotent. Must run before the scheduler behind `exclusive` stops.
  void shutdown();

  Stats stats() const;

 private:
  struct Item {
    std::vector<int32_t> ids;
    bool normalize = true;
    std::promise<Output> promise;
  };

  void loop();
  // Takes the next batch off the queue (lock held); empty when stopping.
  std::vector<Item> take_batch();
  // Runs one batch and fulfils its promises.
  void run_batch(std::vector<Item>& batch);
  int64_t pages_for(size_t tokens) const {
    return (static_cast<int64_t>(tokens) + limits_.page_size - 1) / limits_.page_size;
  }

  Exclusive exclusive_;
  RunnerRef runner_;
  Limits limits_;
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
