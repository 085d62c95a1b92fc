// The CPU ops' thread pool: parallel_for over chunks that the calling thread and threads() - 1
// workers claim from one atomic counter.
//
// Why not an OpenMP team: a team's region ends at a barrier that every member must reach, so one
// member the OS has descheduled (a machine shared with other work) stalls the step for a whole
// time slice. Here nobody waits for a worker that has not started: the caller claims chunks too,
// a worker that wakes late finds none left and sleeps again, and the caller waits only for chunks
// already claimed. Workers spin briefly on a new job, then sleep on a futex.
// Thread-safety: parallel_for may be called from any thread; calls are serialized (one job at a
// time), and a call from inside a job runs its chunks inline.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

#include "core/ops/cpu/cpu_threads.h"

namespace sable::ops::cpu {

// Runs fn(chunk) for chunk in [0, chunks), spread over up to `team` threads (the caller
// included; team <= 1 or chunks <= 1: inline). Returns when every chunk has run. fn must not throw.
void parallel_for(int64_t chunks, int team, const std::function<void(int64_t)>& fn);

// fn(i) for every i in [0, n): in contiguous ranges over threads() threads when `split` (the work
// is worth waking them for), else inline on the calling thread.
template <class F>
void parallel_rows(int64_t n, bool split, F&& fn) {
  if (!split || n <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const int team = threads();
  const int64_t chunks = std::min<int64_t>(n, 4 * static_cast<int64_t>(team));
  parallel_for(chunks, team, [&](int64_t c) {
    for (int64_t i = n * c / chunks; i < n * (c + 1) / chunks; ++i) fn(i);
  });
}

}  // namespace sable::ops::cpu
