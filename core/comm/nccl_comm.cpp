// The NCCL communicator: one ncclComm_t per CUDA device, all made in this process by
// ncclCommInitAll, each driven by its rank's thread on its rank's stream.
//
// Compiled against nccl.h when CMake found it (SABLE_HAVE_NCCL), and the library is opened at run
// time (dlopen libnccl.so.2) when the first group is made: binaries do not depend on the 200 MB
// library, so a machine without it runs everything but CUDA tensor parallelism, which then fails
// at startup naming the missing library. Without nccl.h make_nccl_group says the build has none. Sums follow NCCL's own order (ring or
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
#include <dlfcn.h>
#include <nccl.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <type_traits>
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

// The NCCL entry points, from libnccl.so.2 opened on first use.
struct NcclLib {
  decltype(&::ncclCommInitAll) comm_init_all = nullptr;
  decltype(&::ncclCommDestroy) comm_destroy = nullptr;
  decltype(&::ncclCommAbort) comm_abort = nullptr;
  decltype(&::ncclAllReduce) all_reduce = nullptr;
  decltype(&::ncclAllGather) all_gather = nullptr;
  decltype(&::ncclBroadcast) broadcast = nullptr;
  decltype(&::ncclGetErrorString) error_string = nullptr;
  std::string error;  // why it could not be loaded ("" when loaded)
};

const NcclLib& nccl() {
  static const NcclLib lib = [] {
    NcclLib l;
    void* h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) h = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* why = dlerror();
      l.error = std::string("cannot load libnccl.so.2: ") + (why ? why : "not found");
      return l;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      if (fn == nullptr && l.error.empty()) l.error = std::string("libnccl.so.2 lacks ") + name;
    };
    sym(l.comm_init_all, "ncclCommInitAll");
    sym(l.comm_destroy, "ncclCommDestroy");
    sym(l.comm_abort, "ncclCommAbort");
    sym(l.all_reduce, "ncclAllReduce");
    sym(l.all_gather, "ncclAllGather");
    sym(l.broadcast, "ncclBroadcast");
    sym(l.error_string, "ncclGetErrorString");
    return l;
  }();
  return lib;
}

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
    throw Failure{SABLE_ERR_DEVICE, fmt::format("{}: {}", what, nccl().error_string(r))};
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
    nccl_check(nccl().all_reduce(x->data, x->data, static_cast<size_t>(sable_tensor_numel(x)),
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
      nccl_check(nccl().all_gather(x->data, out->data, count, type, e.comm, s), "ncclAllGather");
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
    nccl_check(nccl().all_gather(x->data, e.scratch, count, type, e.comm, s), "ncclAllGather");
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
    nccl_check(nccl().broadcast(x->data, x->data, static_cast<size_t>(sable_tensor_numel(x)),
                             nccl_type(x->dtype, "broadcast"), root, e.comm,
                             static_cast<cudaStream_t>(stream)),
               "ncclBroadcast");
  });
}

SableStatus c_barrier(SableComm* h, void* stream) {
  return guarded(h, [&](NcclEndpoint& e) {
    nccl_check(nccl().all_reduce(e.one, e.one, 1, ncclFloat32, ncclSum, e.comm,
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
    if (e.comm != nullptr) nccl().comm_abort(e.comm);
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
    if (!nccl().error.empty())
      throw std::runtime_error(fmt::format("tensor parallelism over {} GPUs needs NCCL: {}", n,
                                           nccl().error));
    const ncclResult_t r = nccl().comm_init_all(comms.data(), n, devs.data());
    if (r != ncclSuccess)
      throw std::runtime_error(fmt::format("ncclCommInitAll over {} GPUs failed: {}", n,
                                           nccl().error_string(r)));
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
      if (e.comm != nullptr && !state_.aborted.load()) nccl().comm_destroy(e.comm);  // abort freed it
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

bool nccl_available() { return nccl().error.empty(); }

std::unique_ptr<CommGroup> make_nccl_group(std::span<const int32_t> devices) {
  return std::make_unique<NcclGroup>(devices);
}

#endif

}  // namespace sable::comm
