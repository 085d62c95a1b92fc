// TpGroup: the peer threads of a tensor-parallel model, their start-up, and one forward's fan-out.
//
// Each peer thread makes its runner, then waits for jobs: a job number (generation) and a function
// under one mutex; it runs the job and counts itself done. A job that throws records the rank's
// failure (the first one wins) and aborts the communicator, which releases the ranks blocked in a
// collective with an error of their own; those secondary errors never replace the first.
#include "core/runner/tp_group.h"

#include <fmt/format.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/runner/model_runner.h"
#include "core/util/log.h"

namespace sable::runner {

struct TpGroup::Impl {
  std::unique_ptr<comm::CommGroup> comm;
  std::vector<std::unique_ptr<ModelRunner>> peers;  // [r - 1] is rank r's; null until made
  std::vector<std::thread> threads;

  std::mutex mutex;
  std::condition_variable cv;       // peers wait for a job; rank 0 waits for them
  uint64_t generation = 0;          // bumped per job
  int32_t pending = 0;              // peers still running the current job
  bool stopping = false;
  std::function<void(ModelRunner&)> job;
  std::string first_failure;        // "rank R: what" of the first rank that failed

  // Records rank `rank`'s failure (the first one is kept) and releases the other ranks.
  void fail(int32_t rank, const std::string& what) {
    const std::string reason = fmt::format("tensor-parallel rank {} failed: {}", rank, what);
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      first = first_failure.empty();
      if (first) first_failure = reason;
    }
    if (first) log::error("{}; stopping the other ranks", reason);
    comm->abort(reason);
  }

  // Peer thread r (>= 1): make the runner, report it made (or failed), then serve jobs.
  void peer_main(int32_t rank, const RankFactory& make, int32_t* started) {
    std::unique_ptr<ModelRunner> runner;
    try {
      runner = make(rank, comm->endpoint(rank));
    } catch (const std::exception& e) {
      fail(rank, e.what());
    }
    uint64_t seen = 0;
    {
      std::lock_guard<std::mutex> lock(mutex);
      peers[static_cast<size_t>(rank - 1)] = std::move(runner);
      ++*started;
      seen = generation;
    }
    cv.notify_all();
    for (;;) {
      std::function<void(ModelRunner&)> work;
      ModelRunner* mine = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return stopping || generation != seen; });
        if (stopping) return;
        seen = generation;
        work = job;
        mine = peers[static_cast<size_t>(rank - 1)].get();
      }
      try {
        if (mine == nullptr) throw std::runtime_error("the rank did not start");
        work(*mine);
      } catch (const std::exception& e) {
        fail(rank, e.what());
      }
      {
        std::lock_guard<std::mutex> lock(mutex);
        --pending;
      }
      cv.notify_all();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    cv.notify_all();
    for (std::thread& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
  }
};

TpGroup::TpGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TpGroup::~TpGroup() {
  impl_->stop();
  impl_->peers.clear();  // before the communicator their models hold endpoints of
}

int32_t TpGroup::size() const { return impl_->comm->size(); }

TpGroup::Started TpGroup::start(std::unique_ptr<comm::CommGroup> comm, const RankFactory& make) {
  const int32_t n = comm->size();
  if (n < 2) throw std::invalid_argument("a tensor-parallel group needs at least 2 ranks");
  auto impl = std::make_unique<Impl>();
  Impl& g = *impl;
  g.comm = std::move(comm);
  g.peers.resize(static_cast<size_t>(n - 1));
  int32_t started = 0;
  std::unique_ptr<TpGroup> group(new TpGroup(std::move(impl)));
  for (int32_t r = 1; r < n; ++r)
    g.threads.emplace_back([&g, r, &make, &started] { g.peer_main(r, make, &started); });
  std::unique_ptr<ModelRunner> rank0;
  try {
    rank0 = make(0, g.comm->endpoint(0));
  } catch (const std::exception& e) {
    g.fail(0, e.what());
  }
  {
    std::unique_lock<std::mutex> lock(g.mutex);
    g.cv.wait(lock, [&] { return started == n - 1; });
    if (!g.first_failure.empty()) {
      const std::string why = g.first_failure;
      lock.unlock();
      rank0.reset();
      group.reset();  // joins the peers, destroys what they made
      throw std::runtime_error(fmt::format("cannot start {} tensor-parallel ranks: {}", n, why));
    }
  }
  return {std::move(rank0), std::move(group)};
}

void TpGroup::run(const std::function<void(ModelRunner&)>& peer_job,
                  const std::function<void()>& own) {
  Impl& g = *impl_;
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    if (!g.first_failure.empty()) throw std::runtime_error(g.first_failure);
    g.job = peer_job;
    g.pending = size() - 1;
    ++g.generation;
  }
  g.cv.notify_all();
  try {
    own();
  } catch (const std::exception& e) {
    g.fail(0, e.what());
  }
  std::unique_lock<std::mutex> lock(g.mutex);
  g.cv.wait(lock, [&] { return g.pending == 0; });
  g.job = nullptr;
  if (!g.first_failure.empty()) throw std::runtime_error(g.first_failure);
}

std::optional<std::string> TpGroup::failure() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (impl_->first_failure.empty()) return std::nullopt;
  return impl_->first_failure;
}

}  // namespace sable::runner
