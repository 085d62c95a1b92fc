// Internal toolkit of the CPU ops (not installed, not for plugins): validation that throws OpError,
// the boundary wrapper that turns it into a status + message, views of tensors as rows, and the
// float conversions the ops need. Each cpu_*.cpp file implements a group of ops declared here.
#pragma once

#include <fmt/core.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/ops/context.h"
#include "core/weights/dtype_convert.h"
#include "sable/sable.h"

namespace sable::ops::cpu {

// A validation failure inside an op; run_op maps it to its status.
class OpError : public std::runtime_error {
 public:
  OpError(SableStatus status, const std::string& message)
      : std::runtime_error(message), status(status) {}
  SableStatus status;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw OpError(SABLE_ERR_INVALID_ARGUMENT, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void require(bool ok, fmt::format_string<Args...> format, Args&&... args) {
  if (!ok) throw OpError(SABLE_ERR_INVALID_ARGUMENT, fmt::format(format, std::forward<Args>(args)...));
}

// Records "<op>: <message>" as ctx->last_error (thread-local storage), logs it, returns status.
SableStatus report(SableOpsContext* ctx, SableStatus status, const char* op, const char* message);

// Runs one op body; no exception leaves (bodies validate before any parallel region).
template <class F>
SableStatus run_op(SableOpsContext* ctx, const char* op, F&& body) noexcept {
  try {
    body();
    return SABLE_OK;
  } catch (const OpError& e) {
    return report(ctx, e.status, op, e.what());
  } catch (const std::bad_alloc&) {
    return report(ctx, SABLE_ERR_OUT_OF_MEMORY, op, "out of memory");
  } catch (const std::exception& e) {
    return report(ctx, SABLE_ERR_INTERNAL, op, e.what());
  } catch (...) {
    return report(ctx, SABLE_ERR_INTERNAL, op, "unknown exception");
  }
}

const char* dtype_name(int32_t dtype);
// A tensor's shape for an error message, formatted as "[d0, d1, ...]" only when the message is
// built: the checks every op runs on every call pass it to require() without building a string.
struct ShapeText {
  const SableTensor* t;
};
inline ShapeText shape_str(const SableTensor& t) { return {&t}; }

// Throws unless t is non-null, a CPU tensor with a sane shape, and has data when not empty.
const SableTensor& check_tensor(const SableTensor* t, const char* name);
void check_dtype(const SableTensor& t, const char* name, int32_t dtype);
// F32, BF16 or F16.
void check_float(const SableTensor& t, const char* name);

// A tensor seen as `rows` rows of `cols` unit-stride elements: the leading dims are the rows (they
// may be strided arbitrarily, e.g. per-head views), the last dim the columns.
struct Rows {
  char* data = nullptr;
  int32_t dtype = SABLE_DTYPE_F32;
  int64_t esize = 4;
  int64_t rows = 1;
  int64_t cols = 1;
  bool uniform = true;     // every row `stride` elements after the previous one
  int64_t stride = 0;      // in elements, when uniform
  int32_t nlead = 0;       // leading dims, when not uniform
  int64_t lead_shape[SABLE_MAX_DIMS] = {};
  int64_t lead_stride[SABLE_MAX_DIMS] = {};

  int64_t offset(int64_t r) const {  // in elements
    if (uniform) return r * stride;
    int64_t off = 0;
    for (int32_t d = nlead - 1; d >= 0; --d) {
      off += (r % lead_shape[d]) * lead_stride[d];
      r /= lead_shape[d];
    }
    return off;
  }
  template <class T>
  T* row(int64_t r) const {
    return reinterpret_cast<T*>(data + offset(r) * esize);
  }
};
// Throws when the last dim is not unit-stride (unless it has one element).
Rows rows_of(const SableTensor& t, const char* name);

// ---- float conversions: bf16 (round to nearest even) shared with the weight loader; f16 IEEE half
using sable::weights::bf16_to_f32;
using sable::weights::f16_to_f32;
using sable::weights::f32_to_bf16;
using sable::weights::f32_to_f16;

// Converts n contiguous floats of `dtype` (F32/BF16/F16) to f32.
void to_f32(const void* src, int32_t dtype, float* dst, int64_t n);

// ---- the ops (one group per file)
SableStatus alloc(SableOpsContext*, int32_t, int32_t, const int64_t*, SableTensor*);
SableStatus embedding(SableOpsContext*, const SableTensor*, const SableTensor*, SableTensor*);
SableStatus embedding_shard(SableOpsContext*, const SableTensor*, const SableTensor*, int64_t,
                            SableTensor*);
SableStatus gemm(SableOpsContext*, const SableTensor*, const SableTensor*, const SableTensor*,
                 SableTensor*);
SableStatus rms_norm(SableOpsContext*, const SableTensor*, SableTensor*, const SableTensor*, float,
                     float, SableTensor*);
SableStatus layer_norm(SableOpsContext*, const SableTensor*, SableTensor*, const SableTensor*,
                       const SableTensor*, float, SableTensor*);
SableStatus rope(SableOpsContext*, SableTensor*, SableTensor*, const SableTensor*,
                 const SableTensor*, int32_t, int32_t);
SableStatus act_mul(SableOpsContext*, int32_t, const SableTensor*, SableTensor*);
SableStatus activation(SableOpsContext*, int32_t, const SableTensor*, SableTensor*);
SableStatus add(SableOpsContext*, const SableTensor*, const SableTensor*, SableTensor*);
SableStatus mul(SableOpsContext*, const SableTensor*, const SableTensor*, SableTensor*);
SableStatus scale(SableOpsContext*, const SableTensor*, float, SableTensor*);
SableStatus sigmoid(SableOpsContext*, const SableTensor*, SableTensor*);
SableStatus copy(SableOpsContext*, const SableTensor*, SableTensor*);
SableStatus cast(SableOpsContext*, const SableTensor*, SableTensor*);
SableStatus gather_rows(SableOpsContext*, const SableTensor*, const SableTensor*, SableTensor*);
SableStatus attention(SableOpsContext*, int32_t, const SableTensor*, const SableTensor*,
                      const SableTensor*, float, SableTensor*);
SableStatus attention_bidirectional(SableOpsContext*, const SableTensor*, const SableTensor*,
                                    const SableTensor*, const SableTensor*, float, SableTensor*);
// The sequences of an encoder batch as [begin, end) token ranges: runs of positions 0, 1, 2, ...
// Throws OpError when a run does not restart at 0.
std::vector<std::pair<int64_t, int64_t>> sequences_of_positions(const int32_t* pos, int64_t t);
SableStatus moe_route(SableOpsContext*, int32_t, const SableTensor*, int32_t, int32_t, int32_t,
                      SableTensor*, SableTensor*);
SableStatus moe_experts(SableOpsContext*, const SableTensor*, const SableTensor*,
                        const SableTensor*, const SableTensor*, const SableTensor*, int32_t,
                        SableTensor*);
SableStatus all_reduce(SableOpsContext*, SableTensor*);
SableStatus all_gather(SableOpsContext*, const SableTensor*, int32_t, SableTensor*);
SableStatus argmax(SableOpsContext*, const SableTensor*, SableTensor*);
SableStatus lora(SableOpsContext*, int32_t, int32_t, const SableTensor*, SableTensor*);
SableStatus lora_stacked(SableOpsContext*, int32_t, int32_t, int32_t, const SableTensor*,
                         SableTensor*);
// The table's parallel_for (ABI 1.6) over the thread pool (thread_pool.h).
SableStatus plugin_parallel_for(SableOpsContext*, int64_t, SableParallelFn, void*);

// Shared kernels used by several ops (plain fp32, rows contiguous).
// y[n, I] = act(x[n, 0:I]) * x[n, I:2I], x rows `x_stride` apart.
void act_mul_rows(int32_t act, const float* x, int64_t x_stride, float* y, int64_t y_stride,
                  int64_t rows, int64_t inter);
// out[M,N] = x[M,K] · w[N,K]ᵀ (+bias), leading dimensions in elements.
void sgemm_xwt(const float* x, int64_t ldx, const float* w, int64_t ldw, const float* bias,
               float* out, int64_t ldo, int64_t m, int64_t n, int64_t k);
bool valid_activation(int32_t act);
// The same over a packed weight (qblocks.h: block-quantized, BF16 or F16) of N rows of K, dense
// (qgemm.cpp).
// precise: fp32 activations against unpacked weight rows (qblocks.h kPreciseActivations).
void packed_gemm(int32_t dtype, const void* w, const float* x, int64_t ldx, const float* bias,
                 float* out, int64_t ldo, int64_t m, int64_t n, int64_t k, bool precise = false);
// out[i, :] = row ids[i] (row i when ids is null) of a packed weight [*, K] as floats.
void dequantize_rows(int32_t dtype, const void* w, int64_t k, const int32_t* ids, int64_t count,
                     float* out, int64_t ldo);

}  // namespace sable::ops::cpu

template <>
struct fmt::formatter<sable::ops::cpu::ShapeText> : fmt::formatter<fmt::string_view> {
  auto format(sable::ops::cpu::ShapeText s, fmt::format_context& ctx) const {
    auto out = fmt::format_to(ctx.out(), "[");
    for (int32_t i = 0; i < s.t->ndim && i < SABLE_MAX_DIMS; ++i) {
      if (i) out = fmt::format_to(out, ", ");
      out = fmt::format_to(out, "{}", s.t->shape[i]);
    }
    return fmt::format_to(out, "]");
  }
};
