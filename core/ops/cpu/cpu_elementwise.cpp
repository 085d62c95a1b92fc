// Elementwise CPU ops: activations (plain and gated), add/mul with broadcasting, scale, sigmoid,
// strided copy and dtype cast. Rows are spread over the thread pool; inner loops are plain
// contiguous loops the compiler vectorises.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/thread_pool.h"
#include "core/ops/cpu/qblocks.h"
#include "core/ops/cpu/qkernels.h"

namespace sable::ops::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 14;  // below this many elements threads cost more than they give

// SiLU through the kernel table's lanes (QKernels::silu_row, core/ops/cpu/silu_lanes.h).
void silu_row(const float* x, const float* u, float* y, int64_t n) {
  best_kernels().silu_row(x, u, y, n);
}
inline float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }
inline float gelu_tanh(float x) {
  const float kAlpha = 0.79788456080286536f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(kAlpha * (x + 0.044715f * x * x * x)));
}
inline float relu(float x) { return x > 0.0f ? x : 0.0f; }

template <class F>
void apply_act(F f, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
void act_row(int32_t act, const float* x, float* y, int64_t n) {
  switch (act) {
    case SABLE_ACT_SILU: silu_row(x, nullptr, y, n); break;
    case SABLE_ACT_GELU: apply_act(gelu, x, y, n); break;
    case SABLE_ACT_GELU_TANH: apply_act(gelu_tanh, x, y, n); break;
    case SABLE_ACT_TANH: apply_act([](float v) { return std::tanh(v); }, x, y, n); break;
    default: apply_act(relu, x, y, n); break;
  }
}

template <class F>
void gated(F f, const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(g[i]) * u[i];
}

void check_same_rows(const Rows& a, const Rows& b, const char* an, const char* bn,
                     const SableTensor& at, const SableTensor& bt) {
  require(a.rows == b.rows && a.cols == b.cols, "{} {} and {} {} differ in shape", an,
          shape_str(at), bn, shape_str(bt));
}

}  // namespace

bool valid_activation(int32_t act) {
  return act == SABLE_ACT_SILU || act == SABLE_ACT_GELU || act == SABLE_ACT_GELU_TANH ||
         act == SABLE_ACT_RELU;
}

void act_mul_rows(int32_t act, const float* x, int64_t x_stride, float* y, int64_t y_stride,
                  int64_t rows, int64_t inter) {
  parallel_rows(rows, rows * inter >= kParallelMin, [&](int64_t r) {
    const float* g = x + r * x_stride;
    const float* u = g + inter;
    float* o = y + r * y_stride;
    switch (act) {
      case SABLE_ACT_SILU: silu_row(g, u, o, inter); break;
      case SABLE_ACT_GELU: gated(gelu, g, u, o, inter); break;
      case SABLE_ACT_GELU_TANH: gated(gelu_tanh, g, u, o, inter); break;
      default: gated(relu, g, u, o, inter); break;
    }
  });
}

SableStatus act_mul(SableOpsContext* ctx, int32_t act, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "act_mul", [&] {
    require(valid_activation(act), "unknown activation {}", act);
    const SableTensor& xt = check_tensor(x, "x");
    const SableTensor& ot = check_tensor(out, "out");
    check_dtype(xt, "x", SABLE_DTYPE_F32);
    check_dtype(ot, "out", SABLE_DTYPE_F32);
    const Rows xr = rows_of(xt, "x"), orr = rows_of(ot, "out");
    require(xr.cols % 2 == 0, "x {} must be [T, 2I] ([gate | up])", shape_str(xt));
    require(orr.rows == xr.rows && orr.cols * 2 == xr.cols, "out {} must be [T, I] for x {}",
            shape_str(ot), shape_str(xt));
    if (xr.uniform && orr.uniform) {
      act_mul_rows(act, xr.row<float>(0), xr.stride, orr.row<float>(0), orr.stride, xr.rows,
                   orr.cols);
      return;
    }
    parallel_rows(xr.rows, xr.rows * xr.cols >= kParallelMin, [&](int64_t r) {
      act_mul_rows(act, xr.row<float>(r), 0, orr.row<float>(r), 0, 1, orr.cols);
    });
  });
}

// The unary elementwise ops share their checks: x and out F32 with the same rows; `row` maps one
// row of x to one row of out.
template <class RowFn>
void unary(const SableTensor* x, SableTensor* out, RowFn row) {
  const SableTensor& xt = check_tensor(x, "x");
  const SableTensor& ot = check_tensor(out, "out");
  check_dtype(xt, "x", SABLE_DTYPE_F32);
  check_dtype(ot, "out", SABLE_DTYPE_F32);
  const Rows xr = rows_of(xt, "x"), orr = rows_of(ot, "out");
  check_same_rows(xr, orr, "x", "out", xt, ot);
  parallel_rows(xr.rows, xr.rows * xr.cols >= kParallelMin,
                [&](int64_t r) { row(xr.row<float>(r), orr.row<float>(r), xr.cols); });
}

SableStatus activation(SableOpsContext* ctx, int32_t act, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "activation", [&] {
    require(valid_activation(act) || act == SABLE_ACT_TANH, "unknown activation {}", act);
    unary(x, out, [act](const float* a, float* y, int64_t n) { act_row(act, a, y, n); });
  });
}

namespace {

// out = a (op) b with b full, [1, N] (row broadcast) or [T, 1] (per-row scalar).
template <bool kMul>
void binary(const SableTensor* a, const SableTensor* b, SableTensor* out) {
  const SableTensor& at = check_tensor(a, "a");
  const SableTensor& bt = check_tensor(b, "b");
  const SableTensor& ot = check_tensor(out, "out");
  check_dtype(at, "a", SABLE_DTYPE_F32);
  check_dtype(bt, "b", SABLE_DTYPE_F32);
  check_dtype(ot, "out", SABLE_DTYPE_F32);
  const Rows ar = rows_of(at, "a"), br = rows_of(bt, "b"), orr = rows_of(ot, "out");
  check_same_rows(ar, orr, "a", "out", at, ot);
  const bool full = br.rows == ar.rows && br.cols == ar.cols;
  const bool row_bcast = br.rows == 1 && br.cols == ar.cols;
  const bool col_bcast = br.cols == 1 && br.rows == ar.rows;
  require(full || row_bcast || col_bcast,
          "b {} does not broadcast to a {} (allowed: same shape, [1, N] or [T, 1])",
          shape_str(bt), shape_str(at));
  const int64_t n = ar.cols;
  parallel_rows(ar.rows, ar.rows * n >= kParallelMin, [&](int64_t r) {
    const float* x = ar.row<float>(r);
    float* y = orr.row<float>(r);
    if (col_bcast && !full) {
      const float s = *br.row<float>(r);
      for (int64_t i = 0; i < n; ++i) y[i] = kMul ? x[i] * s : x[i] + s;
    } else {
      const float* z = br.row<float>(full ? r : 0);
      for (int64_t i = 0; i < n; ++i) y[i] = kMul ? x[i] * z[i] : x[i] + z[i];
    }
  });
}

}  // namespace

SableStatus add(SableOpsContext* ctx, const SableTensor* a, const SableTensor* b,
                SableTensor* out) {
  return run_op(ctx, "add", [&] { binary<false>(a, b, out); });
}

SableStatus mul(SableOpsContext* ctx, const SableTensor* a, const SableTensor* b,
                SableTensor* out) {
  return run_op(ctx, "mul", [&] { binary<true>(a, b, out); });
}

SableStatus scale(SableOpsContext* ctx, const SableTensor* x, float s, SableTensor* out) {
  return run_op(ctx, "scale", [&] {
    unary(x, out, [s](const float* a, float* y, int64_t n) {
      for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s;
    });
  });
}

SableStatus sigmoid(SableOpsContext* ctx, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "sigmoid", [&] {
    unary(x, out, [](const float* a, float* y, int64_t n) {
      for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-a[i]));
    });
  });
}

namespace {

template <class T>
void copy_inner(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  if (ss == 1 && ds == 1) {
    std::memcpy(d, s, static_cast<size_t>(n) * sizeof(T));
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = s[i * ss];
  }
}

}  // namespace

namespace {

// A packed weight (qblocks.h) copied whole: unpacked into F32, or as bytes into its own dtype.
void copy_packed(const SableTensor& st, const SableTensor& dt) {
  require(st.ndim == dt.ndim && st.ndim >= 1, "src {} and dst {} differ in rank", shape_str(st),
          shape_str(dt));
  for (int32_t d = 0; d < st.ndim; ++d)
    require(st.shape[d] == dt.shape[d], "src {} and dst {} differ in shape", shape_str(st),
            shape_str(dt));
  require(sable_tensor_is_contiguous(&st) && sable_tensor_is_contiguous(&dt),
          "a packed {} src and its dst must be contiguous", dtype_name(st.dtype));
  const int64_t k = st.shape[st.ndim - 1], rows = k > 0 ? sable_tensor_numel(&st) / k : 0;
  require(k % row_granule(st.dtype) == 0, "src {} rows are not whole {} blocks", shape_str(st),
          dtype_name(st.dtype));
  if (dt.dtype == st.dtype) {
    std::memcpy(dt.data, st.data, static_cast<size_t>(rows * row_bytes(st.dtype, k)));
    return;
  }
  require(dt.dtype == SABLE_DTYPE_F32, "a {} src copies into F32 or {}, not {}",
          dtype_name(st.dtype), dtype_name(st.dtype), dtype_name(dt.dtype));
  dequantize_rows(st.dtype, st.data, k, nullptr, rows, static_cast<float*>(dt.data), k);
}

}  // namespace

SableStatus copy(SableOpsContext* ctx, const SableTensor* src, SableTensor* dst) {
  return run_op(ctx, "copy", [&] {
    const SableTensor& st = check_tensor(src, "src");
    const SableTensor& dt = check_tensor(dst, "dst");
    if (sable_dtype_block_elems(st.dtype) > 0 ||
        (is_packed_weight(st.dtype) && dt.dtype == SABLE_DTYPE_F32)) {
      copy_packed(st, dt);
      return;
    }
    require(st.dtype == dt.dtype, "src is {} but dst is {} (use cast to convert)",
            dtype_name(st.dtype), dtype_name(dt.dtype));
    require(st.ndim == dt.ndim, "src {} and dst {} differ in rank", shape_str(st), shape_str(dt));
    for (int32_t d = 0; d < st.ndim; ++d) {
      require(st.shape[d] == dt.shape[d], "src {} and dst {} differ in shape", shape_str(st),
              shape_str(dt));
    }
    const int64_t numel = sable_tensor_numel(&st);
    if (numel == 0) return;
    const int32_t nd = st.ndim;
    const int64_t inner = nd > 0 ? st.shape[nd - 1] : 1;
    const int64_t sstr = nd > 0 ? st.strides[nd - 1] : 1;
    const int64_t dstr = nd > 0 ? dt.strides[nd - 1] : 1;
    const int64_t outer = numel / inner;
    const int64_t es = static_cast<int64_t>(sable_dtype_size(st.dtype));
    const char* sbase = static_cast<const char*>(st.data);
    char* dbase = static_cast<char*>(dt.data);
    parallel_rows(outer, numel >= kParallelMin, [&](int64_t o) {
      int64_t so = 0, dof = 0, rem = o;
      for (int32_t d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % st.shape[d];
        rem /= st.shape[d];
        so += i * st.strides[d];
        dof += i * dt.strides[d];
      }
      const char* s = sbase + so * es;
      char* t = dbase + dof * es;
      switch (es) {
        case 1: copy_inner<uint8_t>(s, sstr, t, dstr, inner); break;
        case 2: copy_inner<uint16_t>(s, sstr, t, dstr, inner); break;
        case 4: copy_inner<uint32_t>(s, sstr, t, dstr, inner); break;
        default: copy_inner<uint64_t>(s, sstr, t, dstr, inner); break;
      }
    });
  });
}

namespace {

bool castable(int32_t dt) {
  return dt == SABLE_DTYPE_F32 || dt == SABLE_DTYPE_BF16 || dt == SABLE_DTYPE_F16 ||
         dt == SABLE_DTYPE_I32;
}

inline float load_as_f32(const void* p, int32_t dt, int64_t i) {
  switch (dt) {
    case SABLE_DTYPE_F32: return static_cast<const float*>(p)[i];
    case SABLE_DTYPE_BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case SABLE_DTYPE_F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
  }
}

inline void store_f32(void* p, int32_t dt, int64_t i, float v) {
  switch (dt) {
    case SABLE_DTYPE_F32: static_cast<float*>(p)[i] = v; break;
    case SABLE_DTYPE_BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    case SABLE_DTYPE_F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    default: {
      // Round toward zero like a C cast, saturating and mapping NaN to 0.
      int32_t r = 0;
      if (v >= 2147483647.0f) r = INT32_MAX;
      else if (v <= -2147483648.0f) r = INT32_MIN;
      else if (v == v) r = static_cast<int32_t>(v);
      static_cast<int32_t*>(p)[i] = r;
    }
  }
}

}  // namespace

SableStatus cast(SableOpsContext* ctx, const SableTensor* src, SableTensor* dst) {
  return run_op(ctx, "cast", [&] {
    const SableTensor& st = check_tensor(src, "src");
    const SableTensor& dt = check_tensor(dst, "dst");
    require(castable(st.dtype), "cannot cast from {} (F32/BF16/F16/I32 only)", dtype_name(st.dtype));
    require(castable(dt.dtype), "cannot cast to {} (F32/BF16/F16/I32 only)", dtype_name(dt.dtype));
    require(st.ndim == dt.ndim, "src {} and dst {} differ in rank", shape_str(st), shape_str(dt));
    for (int32_t d = 0; d < st.ndim; ++d) {
      require(st.shape[d] == dt.shape[d], "src {} and dst {} differ in shape", shape_str(st),
              shape_str(dt));
    }
    require(sable_tensor_is_contiguous(&st) && sable_tensor_is_contiguous(&dt),
            "src and dst must be contiguous");
    const int64_t n = sable_tensor_numel(&st);
    if (st.dtype == dt.dtype) {
      if (st.data != dt.data) std::memcpy(dt.data, st.data, static_cast<size_t>(n) * sable_dtype_size(st.dtype));
      return;
    }
    if (st.dtype == SABLE_DTYPE_I32 && dt.dtype == SABLE_DTYPE_F32) {
      const auto* s = static_cast<const int32_t*>(st.data);
      auto* d = static_cast<float*>(dt.data);
    parallel_rows(n, n >= kParallelMin, [&](int64_t i) { d[i] = static_cast<float>(s[i]); });
      return;
    }
    const int32_t sd = st.dtype, dd = dt.dtype;
    parallel_rows(n, n >= kParallelMin,
                  [&](int64_t i) { store_f32(dt.data, dd, i, load_as_f32(st.data, sd, i)); });
  });
}

}  // namespace sable::ops::cpu
