// The NCCL communicator: one ncclComm_t per CUDA device, all made in this process by
// ncclCommInitAll, each driven by its rank's thread on its rank's stream.
//
// Compiled with NCCL when CMake found it (SABLE_HAVE_NCCL); otherwise make_nccl_group throws a
// message saying the build has none, so a CPU-only or NCCL-less CUDA build still links and a
// multi-GPU --tp-size fails at startup with the reason. Sums follow NCCL's own order (ring or
// tree), not rank order: bitwise equality across ranks holds, across TP sizes only within rounding.
// all_gather along dim 0 is one ncclAllGather into `out`; along another dim it gathers into a
// rank-major scratch buffer and copies each rank's block into place (cudaMemcpy2DAsync). The
// scratch grows outside graph capture (the runner's eager warm-up forward sizes it); a capture that
// would need more fails with a message instead of allocating.
#include <fmt/format.h>

#include <stdexcept>

#include "core/comm/communicator.h"

#ifdef SABLE_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>
#endif

namespace sable::comm {

#ifndef SABLE_HAVE_NCCL

bool nccl_available() { return false; }

std::unique_ptr<CommGroup> make_nccl_group(std::span<const int32_t> devices) {
  throw std::runtime_error(fmt::format(
      "tensor parallelism over {} GPUs needs NCCL, and this build has none (install libnccl-dev "
      "and reconfigure with CUDA on)",
      devices.size()));
}

#else

namespace {

struct NcclGroupState;

// What a SableComm* of this implementation points to.
struct NcclEndpoint {
  NcclGroupState* group = nullptr;
  int32_t rank = 0;
  int32_t device = 0;
  ncclComm_t comm = nullptr;
  std::string error;
  void* scratch = nullptr;  // all_gather along dim > 0: [N, numel] rank-major
  size_t scratch_bytes = 0;
  float* one = nullptr;  // barrier: a one-element all-reduce
};

struct NcclGroupState {
  std::vector<NcclEndpoint> endpoints;
  std::atomic<bool> aborted{false};
  std::mutex mutex;
  std::string reason;
};

NcclEndpoint* ep(SableComm* h) { return reinterpret_cast<NcclEndpoint*>(h); }
const NcclEndpoint* ep(const SableComm* h) { return reinterpret_cast<const NcclEndpoint*>(h); }

struct Failure {
  SableStatus status;
  std::string message;
};

void require(bool ok, const std::string& message) {
  if (!ok) throw Failure{SABLE_ERR_INVALID_ARGUMENT, message};
}
void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess && r != ncclInProgress)
    throw Failure{SABLE_ERR_DEVICE, fmt::format("{}: {}", what, ncclGetErrorString(r))};
}
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw Failure{SABLE_ERR_DEVICE, fmt::format("{}: {}", what, cudaGetErrorString(e))};
}

ncclDataType_t nccl_type(int32_t dtype, const char* what) {
  switch (dtype) {
    case SABLE_DTYPE_F32: return ncclFloat32;
    case SABLE_DTYPE_BF16: return ncclBfloat16;
    case SABLE_DTYPE_F16: return ncclFloat16;
    case SABLE_DTYPE_I32: return ncclInt32;
    default: throw Failure{SABLE_ERR_INVALID_ARGUMENT, fmt::format("{}: dtype {} is not supported", what, dtype)};
  }
}

void check_tensor(const NcclEndpoint& e, const SableTensor* x, const char* what) {
  require(x != nullptr && x->data != nullptr, fmt::format("{}: NULL tensor", what));
  require(x->device_type == SABLE_DEVICE_CUDA && x->device_index == e.device,
          fmt::format("{}: the tensor must be on rank {}'s device cuda:{}", what, e.rank, e.device));
  require(sable_tensor_is_contiguous(x) != 0, fmt::format("{}: the tensor must be contiguous", what));
}

template <class F>
SableStatus guarded(SableComm* h, F&& body) noexcept {
  if (h == nullptr) return SABLE_ERR_INVALID_ARGUMENT;
  NcclEndpoint* e = ep(h);
  try {
    e->error.clear();
    if (e->group->aborted.load()) {
      std::lock_guard<std::mutex> lock(e->group->mutex);
      throw Failure{SABLE_ERR_DEVICE, "the tensor-parallel group was aborted: " + e->group->reason};
    }
    cuda_check(cudaSetDevice(e->device), "cudaSetDevice");
    body(*e);
    return SABLE_OK;
  } catch (const Failure& f) {
    e->error = f.message;
    return f.status;
  } catch (const std::exception& ex) {
    e->error = ex.what();
    return SABLE_ERR_INTERNAL;
  }
}

int32_t c_rank(const SableComm* h) { return ep(h)->rank; }
int32_t c_size(const SableComm* h) {
  return static_cast<int32_t>(ep(h)->group->endpoints.size());
}

SableStatus c_all_reduce(SableComm* h, SableTensor* x, int32_t op, void* stream) {
  return guarded(h, [&](NcclEndpoint& e) {
    check_tensor(e, x, "all_reduce");
    require(op == SABLE_REDUCE_SUM, fmt::format("all_reduce: unknown reduce op {}", op));
    nccl_check(ncclAllReduce(x->data, x->data, static_cast<size_t>(sable_tensor_numel(x)),
                             nccl_type(x->dtype, "all_reduce"), ncclSum, e.comm,
                             static_cast<cudaStream_t>(stream)),
               "ncclAllReduce");
  });
}

SableStatus c_all_gather(SableComm* h, const SableTensor* x, int32_t dim, SableTensor* out,
                         void* stream) {
  return guarded(h, [&](NcclEndpoint& e) {
    check_tensor(e, x, "all_gather");
    check_tensor(e, out, "all_gather out");
    const int64_t n = static_cast<int64_t>(e.group->endpoints.size());
    require(dim >= 0 && dim < x->ndim, fmt::format("all_gather: dim {} is outside {} dims", dim, x->ndim));
    require(out->dtype == x->dtype && out->ndim == x->ndim &&
                sable_tensor_numel(out) == n * sable_tensor_numel(x) &&
                out->shape[dim] == n * x->shape[dim],
            fmt::format("all_gather: out must be the input with dim {} {} times larger", dim, n));
    const ncclDataType_t type = nccl_type(x->dtype, "all_gather");
    const size_t count = static_cast<size_t>(sable_tensor_numel(x));
    auto s = static_cast<cudaStream_t>(stream);
    int64_t outer = 1;
    for (int32_t i = 0; i < dim; ++i) outer *= x->shape[i];
    if (outer == 1) {  // rank blocks are contiguous in out already
      nccl_check(ncclAllGather(x->data, out->data, count, type, e.comm, s), "ncclAllGather");
      return;
    }
    const size_t es = sable_dtype_size(x->dtype);
    const size_t bytes = static_cast<size_t>(n) * count * es;
    if (e.scratch_bytes < bytes) {
      cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
      cuda_check(cudaStreamIsCapturing(s, &capture), "cudaStreamIsCapturing");
      require(capture == cudaStreamCaptureStatusNone,
              fmt::format("all_gather: {} bytes of scratch needed during graph capture (the "
                          "warm-up forward sized {})",
                          bytes, e.scratch_bytes));
      if (e.scratch != nullptr) cuda_check(cudaFree(e.scratch), "cudaFree");
      e.scratch = nullptr;
      e.scratch_bytes = 0;
      cuda_check(cudaMalloc(&e.scratch, bytes), "cudaMalloc (all_gather scratch)");
      e.scratch_bytes = bytes;
    }
    nccl_check(ncclAllGather(x->data, e.scratch, count, type, e.comm, s), "ncclAllGather");
    const size_t inner = count / static_cast<size_t>(outer) * es;  // one rank's row, in bytes
    for (int64_t r = 0; r < n; ++r)
      cuda_check(cudaMemcpy2DAsync(static_cast<char*>(out->data) + static_cast<size_t>(r) * inner,
                                   static_cast<size_t>(n) * inner,
                                   static_cast<char*>(e.scratch) + static_cast<size_t>(r) * count * es,
                                   inner, inner, static_cast<size_t>(outer),
                                   cudaMemcpyDeviceToDevice, s),
                 "cudaMemcpy2DAsync");
  });
}

SableStatus c_broadcast(SableComm* h, SableTensor* x, int32_t root, void* stream) {
  return guarded(h, [&](NcclEndpoint& e) {
    check_tensor(e, x, "broadcast");
    require(root >= 0 && root < static_cast<int32_t>(e.group->endpoints.size()),
            fmt::format("broadcast: root {} is outside the group", root));
    nccl_check(ncclBroadcast(x->data, x->data, static_cast<size_t>(sable_tensor_numel(x)),
                             nccl_type(x->dtype, "broadcast"), root, e.comm,
                             static_cast<cudaStream_t>(stream)),
               "ncclBroadcast");
  });
}

SableStatus c_barrier(SableComm* h, void* stream) {
  return guarded(h, [&](NcclEndpoint& e) {
    nccl_check(ncclAllReduce(e.one, e.one, 1, ncclFloat32, ncclSum, e.comm,
                             static_cast<cudaStream_t>(stream)),
               "ncclAllReduce (barrier)");
  });
}

const char* c_last_error(const SableComm* h) { return h == nullptr ? "" : ep(h)->error.c_str(); }

void c_abort(SableComm* h, const char* reason) {
  if (h == nullptr) return;
  NcclGroupState& g = *ep(h)->group;
  {
    std::lock_guard<std::mutex> lock(g.mutex);
    if (g.aborted.exchange(true)) return;
    g.reason = reason != nullptr ? reason : "aborted";
  }
  // ncclCommAbort makes collectives blocked on other ranks return (NCCL's documented way out of
  // a peer that died); the communicators are unusable afterwards.
  for (NcclEndpoint& e : g.endpoints)
    if (e.comm != nullptr) ncclCommAbort(e.comm);
}

const SableCommApi kNcclCommApi = {sizeof(SableCommApi), SABLE_ABI_MAJOR, SABLE_ABI_MINOR,
                                   "nccl",              &c_rank,         &c_size,
                                   &c_all_reduce,       &c_all_gather,   &c_broadcast,
                                   &c_barrier,          &c_last_error,   &c_abort};

class NcclGroup final : public CommGroup {
 public:
  explicit NcclGroup(std::span<const int32_t> devices) {
    const int n = static_cast<int>(devices.size());
    if (n < 1) throw std::invalid_argument("an NCCL group needs >= 1 device");
    // The device machines forbid NVLink SHARP / multicast; set before any communicator exists.
    ::setenv("NCCL_NVLS_ENABLE", "0", 1);
    state_.endpoints.resize(devices.size());
    std::vector<ncclComm_t> comms(devices.size(), nullptr);
    std::vector<int> devs(devices.begin(), devices.end());
    const ncclResult_t r = ncclCommInitAll(comms.data(), n, devs.data());
    if (r != ncclSuccess)
      throw std::runtime_error(fmt::format("ncclCommInitAll over {} GPUs failed: {}", n,
                                           ncclGetErrorString(r)));
    for (int i = 0; i < n; ++i) {
      NcclEndpoint& e = state_.endpoints[static_cast<size_t>(i)];
      e.group = &state_;
      e.rank = i;
      e.device = devs[static_cast<size_t>(i)];
      e.comm = comms[static_cast<size_t>(i)];
      if (cudaSetDevice(e.device) != cudaSuccess ||
          cudaMalloc(reinterpret_cast<void**>(&e.one), sizeof(float)) != cudaSuccess)
        throw std::runtime_error(fmt::format("cannot allocate on cuda:{} for the NCCL group", e.device));
    }
  }
  ~NcclGroup() override {
    for (NcclEndpoint& e : state_.endpoints) {
      cudaSetDevice(e.device);
      if (e.comm != nullptr && !state_.aborted.load()) ncclCommDestroy(e.comm);  // abort freed it
      if (e.scratch != nullptr) cudaFree(e.scratch);
      if (e.one != nullptr) cudaFree(e.one);
    }
  }
  int32_t size() const override { return static_cast<int32_t>(state_.endpoints.size()); }
  Endpoint endpoint(int32_t rank) override {
    if (rank < 0 || rank >= size())
      throw std::out_of_range(fmt::format("rank {} is outside [0, {})", rank, size()));
    return {&kNcclCommApi, reinterpret_cast<SableComm*>(&state_.endpoints[static_cast<size_t>(rank)])};
  }
  void abort(const std::string& reason) override {
    c_abort(reinterpret_cast<SableComm*>(&state_.endpoints[0]), reason.c_str());
  }
  std::optional<std::string> failure() const override {
    if (!state_.aborted.load()) return std::nullopt;
    std::lock_guard<std::mutex> lock(state_.mutex);
    return state_.reason;
  }

 private:
  mutable NcclGroupState state_;
};

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<CommGroup> make_nccl_group(std::span<const int32_t> devices) {
  return std::make_unique<NcclGroup>(devices);
}

#endif

}  // namespace sable::comm
