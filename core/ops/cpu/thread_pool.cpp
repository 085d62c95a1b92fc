// The claim-counter thread pool (see thread_pool.h).
//
// One job at a time lives in `word_`: generation (16 bits) | chunk count (24) | next chunk (24).
// A claim is a CAS that bumps `next` only while the generation is unchanged and next < count, so a
// worker holding a stale generation can never take a chunk of the next job, and fn / count are
// read only after a successful claim (the caller cannot publish the next job while a claimed chunk
// is unfinished). Chunk counts above 2^24 are folded into ranges by the caller's fn.
#include "core/ops/cpu/thread_pool.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sable::ops::cpu {
namespace {

constexpr int kSpins = 20000;  // ~50-100 us of polling before a worker sleeps

void futex_wait(std::atomic<uint32_t>* a, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* a) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(a), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}
inline void relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

thread_local bool t_in_job = false;

class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
    return *pool;
  }

  void run(int64_t chunks, int team, const std::function<void(int64_t)>& fn) {
    std::lock_guard<std::mutex> lock(run_mutex_);
    ensure_workers(team - 1);
    fn_ = &fn;
    done_.store(0, std::memory_order_relaxed);
    gen_ = (gen_ + 1) & 0xFFFF;
    word_.store(pack(gen_, static_cast<uint64_t>(chunks), 0), std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    if (sleepers_.load(std::memory_order_acquire) > 0) futex_wake_all(&wake_);
    const int64_t mine = work();
    int64_t done = done_.fetch_add(mine, std::memory_order_acq_rel) + mine;
    for (int spins = 0; done < chunks; ++spins) {  // chunks others claimed, still running
      if (spins < kSpins) relax();
      else std::this_thread::yield();  // the claimer may be waiting for this core
      done = done_.load(std::memory_order_acquire);
    }
    fn_ = nullptr;
  }

 private:
  static uint64_t pack(uint64_t gen, uint64_t count, uint64_t next) {
    return gen << 48 | count << 24 | next;
  }

  // Claims and runs chunks of the current job until none is left; returns how many it ran.
  int64_t work() {
    int64_t ran = 0;
    uint64_t w = word_.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t count = (w >> 24) & 0xFFFFFF, next = w & 0xFFFFFF;
      if (next >= count) return ran;
      if (!word_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
      t_in_job = true;
      (*fn_)(static_cast<int64_t>(next));
      t_in_job = false;
      ++ran;
      w = word_.load(std::memory_order_acquire);
    }
  }

  void ensure_workers(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      workers_.emplace_back([this] { loop(); });
      workers_.back().detach();
    }
  }

  void loop() {
    uint32_t seen = wake_.load(std::memory_order_acquire);
    for (;;) {
      int spins = 0;
      while (wake_.load(std::memory_order_acquire) == seen) {
        if (++spins < kSpins) {
          relax();
          continue;
        }
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        if (wake_.load(std::memory_order_acquire) == seen) futex_wait(&wake_, seen);
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      seen = wake_.load(std::memory_order_acquire);
      const int64_t ran = work();
      if (ran > 0) done_.fetch_add(ran, std::memory_order_acq_rel);
    }
  }

  std::mutex run_mutex_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  uint64_t gen_ = 0;
  std::atomic<uint64_t> word_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> wake_{0};
  std::atomic<int> sleepers_{0};
};

}  // namespace

void parallel_for(int64_t chunks, int team, const std::function<void(int64_t)>& fn) {
  if (chunks <= 0) return;
  if (team <= 1 || chunks == 1 || t_in_job) {
    for (int64_t c = 0; c < chunks; ++c) fn(c);
    return;
  }
  Pool::get().run(chunks, team, fn);
}

}  // namespace sable::ops::cpu
