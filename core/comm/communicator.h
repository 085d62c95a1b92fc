// The host side of the SDK's communicator (sable/comm.h): a group of N rank endpoints and the
// factories of its two implementations.
//
// The model runner makes one group per tensor-parallel model and hands endpoint(r) to rank r's
// model host (SableHostApi.comm / comm_handle) and forward context, so the ops table's all_reduce
// and all_gather reach it. A failing rank's driver calls abort(reason): every other rank blocked
// in a collective, or entering one later, gets an error naming the reason instead of waiting
// forever.
// Ownership: the group owns its endpoints; it must outlive every model and context using them.
// Thread-safety: endpoint r is used by rank r's thread only; abort() and failure() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "sable/comm.h"

namespace sable::comm {

// One rank's endpoint as the C ABI passes it.
struct Endpoint {
  const SableCommApi* api = nullptr;
  SableComm* handle = nullptr;
};

class CommGroup {
 public:
  virtual ~CommGroup() = default;
  virtual int32_t size() const = 0;
  virtual Endpoint endpoint(int32_t rank) = 0;
  // Poisons the group (SableCommApi.abort). The first reason is kept.
  virtual void abort(const std::string& reason) = 0;
  // The abort reason once the group was aborted.
  virtual std::optional<std::string> failure() const = 0;
};

// In-process ranks on the CPU: threads that meet at barriers over one shared buffer. Sums add the
// ranks in order 0..N-1 (bitwise the same on every rank and every run). size >= 1.
std::unique_ptr<CommGroup> make_cpu_group(int32_t size);

// True when this build has NCCL (SABLE_HAVE_NCCL).
bool nccl_available();

// One NCCL communicator per CUDA device of `devices` (rank r on devices[r]), all in this process
// (ncclCommInitAll). NVLink multicast is switched off first (NCCL_NVLS_ENABLE=0), as the device
// machines require. Throws std::runtime_error naming the NCCL error, or when the build has no NCCL.
std::unique_ptr<CommGroup> make_nccl_group(std::span<const int32_t> devices);

}  // namespace sable::comm
