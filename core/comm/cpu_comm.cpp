// The in-process CPU communicator: N rank threads of one process meet at a barrier, publish
// pointers to their tensors in shared slots, and read each other's memory directly.
//
// all_reduce: after the first barrier every rank sums its own 1/N of the elements over the ranks
// in order 0..N-1 (float accumulation, one rounding for bf16/f16) into a shared scratch buffer;
// after the second every rank copies the whole sum back; the third frees the scratch and slots for
// the next collective. Every rank ends with bitwise the same values, run after run.
// all_gather and broadcast copy straight from the other ranks' published tensors between two
// barriers. A mismatch of shapes or dtypes is seen identically by every rank (they read the same
// slots), so every rank fails the call together and none waits for a partner that left.
// abort() wakes every waiter; from then on each collective fails with the reason.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/comm/communicator.h"
#include "core/weights/dtype_convert.h"

namespace sable::comm {
namespace {

// A collective's failure on this rank: its status and message.
struct CollectiveError {
  SableStatus status;
  std::string message;
};

struct CpuGroupState;

// What a SableComm* of this implementation points to (the handle type stays opaque: the NCCL
// implementation has its own).
struct CpuEndpoint {
  CpuGroupState* group = nullptr;
  int32_t rank = 0;
  std::string error;
};

struct CpuGroupState {
  int32_t size = 1;
  std::mutex mutex;
  std::condition_variable cv;
  int32_t arrived = 0;
  uint64_t generation = 0;
  bool aborted = false;
  std::string reason;
  std::vector<const SableTensor*> slots;  // what each rank published for the current collective
  std::vector<int32_t> args;              // each rank's scalar argument (dim, root)
  std::vector<unsigned char> scratch;     // all_reduce sums
  std::vector<CpuEndpoint> endpoints;

  // Every rank's thread calls it; returns when all have (throws once the group is aborted).
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex);
    if (aborted) throw CollectiveError{SABLE_ERR_DEVICE, failed_message()};
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    cv.wait(lock, [&] { return generation != gen || aborted; });
    if (generation == gen) throw CollectiveError{SABLE_ERR_DEVICE, failed_message()};
  }
  std::string failed_message() const {
    return "the tensor-parallel group was aborted: " + reason;
  }
};

CpuEndpoint* ep(SableComm* c) { return reinterpret_cast<CpuEndpoint*>(c); }
const CpuEndpoint* ep(const SableComm* c) { return reinterpret_cast<const CpuEndpoint*>(c); }
SableComm* handle(CpuEndpoint* e) { return reinterpret_cast<SableComm*>(e); }

bool is_float(int32_t dtype) {
  return dtype == SABLE_DTYPE_F32 || dtype == SABLE_DTYPE_BF16 || dtype == SABLE_DTYPE_F16;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw CollectiveError{SABLE_ERR_INVALID_ARGUMENT, message};
}

// The checks one rank can make on its own tensor before publishing it.
void check_local(const SableTensor* x, const char* what, bool ints_ok) {
  require(x != nullptr && x->data != nullptr, fmt::format("{}: NULL tensor", what));
  require(x->device_type == SABLE_DEVICE_CPU,
          fmt::format("{}: the CPU communicator takes host tensors", what));
  require(is_float(x->dtype) || (ints_ok && x->dtype == SABLE_DTYPE_I32),
          fmt::format("{}: dtype {} is not supported", what, x->dtype));
  require(sable_tensor_is_contiguous(x) != 0, fmt::format("{}: the tensor must be contiguous", what));
}

bool same_shape(const SableTensor& a, const SableTensor& b) {
  if (a.ndim != b.ndim || a.dtype != b.dtype) return false;
  for (int32_t i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i]) return false;
  return true;
}

// Checks, after the first barrier, that every rank published the same shape, dtype and argument.
// Every rank reads the same slots, so all of them decide alike.
void check_agreement(CpuGroupState& g, const char* what) {
  for (int32_t r = 1; r < g.size; ++r) {
    if (!same_shape(*g.slots[0], *g.slots[static_cast<size_t>(r)]) || g.args[0] != g.args[r])
      throw CollectiveError{SABLE_ERR_INVALID_ARGUMENT,
                            fmt::format("{}: ranks disagree on shape, dtype or argument (rank 0 "
                                        "and rank {})",
                                        what, r)};
  }
}

// Publishes x and `arg`, meets the others, and checks that they agree; a disagreement fails every
// rank after one more barrier (so nobody reuses the slots while another still reads them).
void publish(CpuEndpoint* c, const SableTensor* x, int32_t arg, const char* what) {
  CpuGroupState& g = (*c->group);
  g.slots[static_cast<size_t>(c->rank)] = x;
  g.args[static_cast<size_t>(c->rank)] = arg;
  g.barrier();
  try {
    check_agreement(g, what);
  } catch (const CollectiveError&) {
    g.barrier();
    throw;
  }
}

float load(const void* p, int32_t dtype, size_t i) {
  switch (dtype) {
    case SABLE_DTYPE_F32: return static_cast<const float*>(p)[i];
    case SABLE_DTYPE_BF16: return weights::bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return weights::f16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

void store(void* p, int32_t dtype, size_t i, float v) {
  switch (dtype) {
    case SABLE_DTYPE_F32: static_cast<float*>(p)[i] = v; break;
    case SABLE_DTYPE_BF16: static_cast<uint16_t*>(p)[i] = weights::f32_to_bf16(v); break;
    default: static_cast<uint16_t*>(p)[i] = weights::f32_to_f16(v); break;
  }
}

template <class F>
SableStatus guarded(CpuEndpoint* c, F&& body) noexcept {
  if (c == nullptr) return SABLE_ERR_INVALID_ARGUMENT;
  try {
    c->error.clear();
    body();
    return SABLE_OK;
  } catch (const CollectiveError& e) {
    c->error = e.message;
    return e.status;
  } catch (const std::exception& e) {
    c->error = e.what();
    return SABLE_ERR_INTERNAL;
  } catch (...) {
    c->error = "unknown error";
    return SABLE_ERR_INTERNAL;
  }
}

int32_t c_rank(const SableComm* h) { return ep(h)->rank; }
int32_t c_size(const SableComm* h) { return ep(h)->group->size; }

SableStatus c_all_reduce(SableComm* h, SableTensor* x, int32_t op, void*) {
  CpuEndpoint* c = ep(h);
  return guarded(c, [&] {
    check_local(x, "all_reduce", false);
    require(op == SABLE_REDUCE_SUM, fmt::format("all_reduce: unknown reduce op {}", op));
    CpuGroupState& g = (*c->group);
    const size_t n = static_cast<size_t>(sable_tensor_numel(x));
    const size_t bytes = n * sable_dtype_size(x->dtype);
    // Nobody touches the scratch between the previous collective's last barrier and this one's
    // first, so rank 0 sizes it now (a disagreement on the size fails below without using it).
    if (c->rank == 0 && g.scratch.size() < bytes) g.scratch.resize(bytes);
    publish(c, x, op, "all_reduce");
    const size_t begin = n * static_cast<size_t>(c->rank) / static_cast<size_t>(g.size);
    const size_t end = n * static_cast<size_t>(c->rank + 1) / static_cast<size_t>(g.size);
    void* sum = g.scratch.data();
    for (size_t i = begin; i < end; ++i) {
      float acc = load(g.slots[0]->data, x->dtype, i);
      for (int32_t r = 1; r < g.size; ++r)
        acc += load(g.slots[static_cast<size_t>(r)]->data, x->dtype, i);
      store(sum, x->dtype, i, acc);
    }
    g.barrier();
    std::memcpy(x->data, sum, bytes);
    g.barrier();
  });
}

SableStatus c_all_gather(SableComm* h, const SableTensor* x, int32_t dim, SableTensor* out, void*) {
  CpuEndpoint* c = ep(h);
  return guarded(c, [&] {
    check_local(x, "all_gather", true);
    check_local(out, "all_gather out", true);
    CpuGroupState& g = (*c->group);
    require(dim >= 0 && dim < x->ndim,
            fmt::format("all_gather: dim {} is outside a tensor of {} dims", dim, x->ndim));
    SableTensor want = *x;
    want.shape[dim] *= g.size;
    require(same_shape(want, *out),
            fmt::format("all_gather: out must be the input with dim {} {} times larger", dim,
                        g.size));
    publish(c, x, dim, "all_gather");
    // x as [outer, inner] where inner spans dims dim.. : rank r's rows land at column block r.
    int64_t outer = 1;
    for (int32_t i = 0; i < dim; ++i) outer *= x->shape[i];
    const size_t inner =
        static_cast<size_t>(sable_tensor_numel(x) / std::max<int64_t>(outer, 1)) *
        sable_dtype_size(x->dtype);
    auto* dst = static_cast<unsigned char*>(out->data);
    for (int64_t o = 0; o < outer; ++o)
      for (int32_t r = 0; r < g.size; ++r)
        std::memcpy(dst + (static_cast<size_t>(o) * static_cast<size_t>(g.size) +
                           static_cast<size_t>(r)) * inner,
                    static_cast<const unsigned char*>(g.slots[static_cast<size_t>(r)]->data) +
                        static_cast<size_t>(o) * inner,
                    inner);
    g.barrier();
  });
}

SableStatus c_broadcast(SableComm* h, SableTensor* x, int32_t root, void*) {
  CpuEndpoint* c = ep(h);
  return guarded(c, [&] {
    check_local(x, "broadcast", true);
    CpuGroupState& g = (*c->group);
    require(root >= 0 && root < g.size,
            fmt::format("broadcast: root {} is outside [0, {})", root, g.size));
    publish(c, x, root, "broadcast");
    if (c->rank != root)
      std::memcpy(x->data, g.slots[static_cast<size_t>(root)]->data,
                  static_cast<size_t>(sable_tensor_numel(x)) * sable_dtype_size(x->dtype));
    g.barrier();  // the root's tensor is read until here
  });
}

SableStatus c_barrier(SableComm* h, void*) {
  CpuEndpoint* c = ep(h);
  return guarded(c, [&] { c->group->barrier(); });
}

const char* c_last_error(const SableComm* h) { return h == nullptr ? "" : ep(h)->error.c_str(); }

void c_abort(SableComm* h, const char* reason) {
  if (h == nullptr) return;
  CpuEndpoint* c = ep(h);
  CpuGroupState& g = (*c->group);
  std::lock_guard<std::mutex> lock(g.mutex);
  if (!g.aborted) {
    g.aborted = true;
    g.reason = reason != nullptr ? reason : "aborted";
  }
  g.cv.notify_all();
}

const SableCommApi kCpuCommApi = {sizeof(SableCommApi), SABLE_ABI_MAJOR, SABLE_ABI_MINOR,
                                  "cpu",               &c_rank,         &c_size,
                                  &c_all_reduce,       &c_all_gather,   &c_broadcast,
                                  &c_barrier,          &c_last_error,   &c_abort};

class CpuGroup final : public CommGroup {
 public:
  explicit CpuGroup(int32_t size) {
    if (size < 1) throw std::invalid_argument(fmt::format("a group needs >= 1 rank, got {}", size));
    state_.size = size;
    state_.slots.assign(static_cast<size_t>(size), nullptr);
    state_.args.assign(static_cast<size_t>(size), 0);
    state_.endpoints.resize(static_cast<size_t>(size));
    for (int32_t r = 0; r < size; ++r) {
      state_.endpoints[static_cast<size_t>(r)].group = &state_;
      state_.endpoints[static_cast<size_t>(r)].rank = r;
    }
  }
  int32_t size() const override { return state_.size; }
  Endpoint endpoint(int32_t rank) override {
    if (rank < 0 || rank >= state_.size)
      throw std::out_of_range(fmt::format("rank {} is outside [0, {})", rank, state_.size));
    return {&kCpuCommApi, handle(&state_.endpoints[static_cast<size_t>(rank)])};
  }
  void abort(const std::string& reason) override {
    c_abort(handle(&state_.endpoints[0]), reason.c_str());
  }
  std::optional<std::string> failure() const override {
    std::lock_guard<std::mutex> lock(state_.mutex);
    if (!state_.aborted) return std::nullopt;
    return state_.reason;
  }

 private:
  mutable CpuGroupState state_;
};

}  // namespace

std::unique_ptr<CommGroup> make_cpu_group(int32_t size) {
  return std::make_unique<CpuGroup>(size);
}

}  // namespace sable::comm
