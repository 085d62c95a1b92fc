// The ranks of a tensor-parallel model (DESIGN.md "Tensor parallelism"): one ModelRunner per rank,
// ranks 1..N-1 each on a thread of its own, rank 0 on the caller's thread (the scheduler's).
//
// The scheduler sees one runner, rank 0's. Every forward runs the same batch on every rank: rank 0
// hands the sequences to the peer threads, runs its own forward, and waits for theirs; the model
// plugins meet in the communicator's collectives (all-reduce after row-parallel projections, the
// vocabulary gather of the LM head). Rank 0's logits are the ones sampled. Each rank owns its
// weights slice, its KV pool (the same page ids on every rank: the scheduler's accounting holds for
// all of them) and its attention backend.
// Failure: a rank that throws aborts the communicator, so ranks blocked in a collective return
// instead of waiting; the forward then throws naming the first rank that failed, and the group
// stays failed (failure() says why; every later forward throws at once). The engine asks for it
// and the server stops.
// Ownership: the group owns the communicator and the peer runners; rank 0's runner owns the group
// and destroys it last (the communicator outlives every rank's model).
// Thread-safety: start/run from one thread (rank 0's); failure() from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/comm/communicator.h"

namespace sable::runner {

class ModelRunner;

class TpGroup {
 public:
  // Makes rank r's runner; runs on rank r's thread (rank 0: the caller's).
  using RankFactory = std::function<std::unique_ptr<ModelRunner>(int32_t rank, comm::Endpoint)>;

  // Starts the ranks of `comm` (size >= 2) in parallel, each making its runner with `make`.
  // Returns rank 0's runner and the group it must keep; throws std::runtime_error naming the first
  // rank that failed and its reason (the others are stopped and destroyed).
  struct Started {
    std::unique_ptr<ModelRunner> rank0;
    std::unique_ptr<TpGroup> group;
  };
  static Started start(std::unique_ptr<comm::CommGroup> comm, const RankFactory& make);

  ~TpGroup();
  TpGroup(const TpGroup&) = delete;
  TpGroup& operator=(const TpGroup&) = delete;

  int32_t size() const;
  // Runs peer_job(runner) on every peer's thread while own() runs on the caller's; returns when
  // all are done. A failure anywhere aborts the communicator; then this throws
  // std::runtime_error "tensor-parallel rank R failed: ..." for the first rank that failed.
  void run(const std::function<void(ModelRunner&)>& peer_job, const std::function<void()>& own);
  // Why the group stopped (a rank failed), or nullopt while it is healthy.
  std::optional<std::string> failure() const;

 private:
  struct Impl;
  explicit TpGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sable::runner
