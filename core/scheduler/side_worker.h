// Threads that run a job beside the scheduler thread: the grammar masks of a step are filled there
// while the model computes the step. SideWorker is one thread, started on first use and kept, so
// a constrained step costs a hand-off, not a thread creation; SideWorkers splits a batch of rows
// over several of them, so a large constrained batch (or masks computed for the first time) does
// not outlast the forward and serialise in front of sampling. share() runs rows with the calling
// thread taking part, for work on the critical path (the grammar's accept and jump-forward query
// between sampling and the next launch): the caller never waits for a worker to wake.
// Thread-safety: start()/share() and wait() are called by one thread (the scheduler's).
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace sable::scheduler {

class SideWorker {
 public:
  SideWorker() = default;
  ~SideWorker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  SideWorker(const SideWorker&) = delete;
  SideWorker& operator=(const SideWorker&) = delete;

  // Runs `job` on the worker; the previous job must have been waited for.
  void start(std::function<void()> job) {
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = std::move(job);
      done_ = false;
      error_ = nullptr;
    }
    cv_.notify_all();
  }
  // Blocks until the started job finished; rethrows what it threw.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || job_; });
      if (stop_) return;
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      std::exception_ptr error;
      try {
        job();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      error_ = error;
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool done_ = true;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

// Up to `threads` SideWorkers; a job over `n` rows runs as contiguous slices of at least
// `min_rows` rows each (small batches stay on one thread: a hand-off costs more than a few masks).
class SideWorkers {
 public:
  SideWorkers(int32_t threads, int32_t min_rows)
      : workers_(static_cast<size_t>(std::max(threads, 1))), min_rows_(std::max(min_rows, 1)) {}

  // Runs job(begin, end) over slices covering [0, n); the previous job must have been waited for.
  void start(size_t n, std::function<void(size_t, size_t)> job) {
    const size_t slices = std::min(workers_.size(), std::max<size_t>(1, n / min_rows_));
    active_ = slices;
    job_ = std::move(job);
    for (size_t w = 0; w < slices; ++w) {
      const size_t begin = n * w / slices, end = n * (w + 1) / slices;
      workers_[w].start([this, begin, end] { job_(begin, end); });
    }
  }
  // Blocks until every slice finished; rethrows the first slice's error.
  void wait() {
    std::exception_ptr first;
    for (size_t w = 0; w < active_; ++w) {
      try {
        workers_[w].wait();
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    }
    active_ = 0;
    if (first) std::rethrow_exception(first);
  }
  size_t threads() const { return workers_.size(); }

  // Runs row(i) for every i in [0, n) on the calling thread and on up to `helpers` workers
  // together: rows are claimed one at a time, so the caller starts at once and a worker that wakes
  // late takes what is left, or nothing (it never calls `row` then, which may be gone). Returns
  // once every row is done; rethrows the first row's error. The workers' end is waited for at the
  // next share() or wait() (they have long found no row left by then).
  void share(size_t n, size_t helpers, std::function<void(size_t)> row) {
    wait();
    struct Shared {
      std::atomic<size_t> next{0};
      std::atomic<size_t> done{0};
      size_t n = 0;
      std::function<void(size_t)> row;
      std::mutex mutex;
      std::exception_ptr error;
    };
    auto shared = std::make_shared<Shared>();
    shared->n = n;
    shared->row = std::move(row);
    auto run = [shared] {
      Shared& s = *shared;
      for (size_t i; (i = s.next.fetch_add(1, std::memory_order_relaxed)) < s.n;) {
        try {
          s.row(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(s.mutex);
          if (!s.error) s.error = std::current_exception();
        }
        s.done.fetch_add(1, std::memory_order_release);
      }
    };
    active_ = std::min({helpers, workers_.size(), n > 0 ? n - 1 : 0});
    for (size_t w = 0; w < active_; ++w) workers_[w].start(run);
    run();
    // Only rows a worker claimed are left: their end is near.
    while (shared->done.load(std::memory_order_acquire) < n) std::this_thread::yield();
    std::lock_guard<std::mutex> lock(shared->mutex);
    if (shared->error) std::rethrow_exception(shared->error);
  }

 private:
  std::vector<SideWorker> workers_;
  size_t min_rows_;
  size_t active_ = 0;
  std::function<void(size_t, size_t)> job_;
};

}  // namespace sable::scheduler
