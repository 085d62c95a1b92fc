// The CPU GEMM: out[M,N] = x[M,K] · w[N,K]ᵀ (+ bias). F32 weights go through OpenBLAS (sgemv for
// a single row, the decode case), the output columns split in chunks over the CPU ops' thread pool
// with OpenBLAS itself single-threaded (cpu_threads.h); packed weights (block-quantized, BF16, F16) go
// through packed_gemm (qgemm.cpp). Rows of x, w and out may be strided (leading dimensions).
#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qblocks.h"
#include "core/ops/cpu/thread_pool.h"

namespace sable::ops::cpu {
namespace {

// One thread's share of the columns: out[:, n0:n1] from w rows n0..n1 (bias already in out
// when beta is 1).
void sgemm_slice(const float* x, int64_t ldx, const float* w, int64_t ldw, float beta, float* out,
                 int64_t ldo, int64_t m, int64_t n0, int64_t n1, int64_t k) {
  const auto n = static_cast<blasint>(n1 - n0);
  if (n <= 0) return;
  if (m == 1) {  // y[n] = W[n,K] · x[K]
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, static_cast<blasint>(k), 1.0f, w + n0 * ldw,
                static_cast<blasint>(ldw), x, 1, beta, out + n0, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), n,
              static_cast<blasint>(k), 1.0f, x, static_cast<blasint>(ldx), w + n0 * ldw,
              static_cast<blasint>(ldw), beta, out + n0, static_cast<blasint>(ldo));
}

}  // namespace

void sgemm_xwt(const float* x, int64_t ldx, const float* w, int64_t ldw, const float* bias,
               float* out, int64_t ldo, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  float beta = 0.0f;
  if (bias != nullptr) {
    for (int64_t r = 0; r < m; ++r) std::memcpy(out + r * ldo, bias, static_cast<size_t>(n) * 4);
    beta = 1.0f;
  }
  if (k == 0) {
    if (bias == nullptr) {
      for (int64_t r = 0; r < m; ++r) std::fill(out + r * ldo, out + r * ldo + n, 0.0f);
    }
    return;
  }
  // Threads worth waking: about 64K multiply-adds each at least; none inside an OpenMP region.
  const int team = omp_in_parallel() ? 1
                                     : static_cast<int>(std::clamp<int64_t>(
                                           (m * n * k) >> 16, 1, threads()));
  const int64_t units = (n + 15) / 16;  // slices in multiples of 16 columns
  const int64_t chunks = std::min<int64_t>(units, 4 * team);
  parallel_for(chunks, team, [&](int64_t c) {
    const int64_t n0 = std::min(n, units * c / chunks * 16);
    const int64_t n1 = std::min(n, units * (c + 1) / chunks * 16);
    sgemm_slice(x, ldx, w, ldw, beta, out, ldo, m, n0, n1, k);
  });
}

namespace {

// When the trailing dims of t multiply to `cols` and are dense among themselves, the same memory
// as a 2-D view [rows, cols] (e.g. attention output [T, Hq, D] as [T, Hq*D]); else t unchanged.
SableTensor fold_trailing(const SableTensor& t, int64_t cols) {
  if (t.ndim <= 2 || cols <= 0 || t.shape[t.ndim - 1] == cols) return t;
  int64_t prod = 1, expect = t.strides[t.ndim - 1];
  for (int32_t d = t.ndim - 1; d >= 1; --d) {
    if (t.strides[d] != expect && t.shape[d] != 1) return t;
    expect = t.strides[d] * t.shape[d];
    prod *= t.shape[d];
    if (prod == cols) {
      SableTensor v = t;
      int64_t rows = 1;
      for (int32_t e = 0; e < d; ++e) rows *= t.shape[e];
      // Rows uniform only if the leading dims collapse; rows_of checks that below.
      v.ndim = 2;
      v.shape[0] = rows;
      v.shape[1] = cols;
      v.strides[0] = d > 0 ? t.strides[d - 1] : cols;
      v.strides[1] = 1;
      for (int32_t e = d - 2; e >= 0; --e) {
        if (t.shape[e] > 1 && t.strides[e] != t.strides[e + 1] * t.shape[e + 1]) return t;
      }
      return t.strides[t.ndim - 1] == 1 ? v : t;
    }
    if (prod > cols) return t;
  }
  return t;
}

// A uniform row view usable as a BLAS matrix (leading dimension >= cols).
Rows matrix(const SableTensor& t, const char* name) {
  Rows r = rows_of(t, name);
  require(r.uniform, "{} {} must have uniformly spaced rows", name, shape_str(t));
  if (r.rows <= 1) r.stride = std::max<int64_t>(r.stride, std::max<int64_t>(r.cols, 1));
  require(r.stride >= r.cols, "{} {} has overlapping rows (row stride {})", name, shape_str(t),
          r.stride);
  return r;
}

}  // namespace

SableStatus gemm(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w,
                 const SableTensor* bias, SableTensor* out) {
  return run_op(ctx, "gemm", [&] {
    const SableTensor& xt = check_tensor(x, "x");
    const SableTensor& wt = check_tensor(w, "w");
    const SableTensor& ot = check_tensor(out, "out");
    check_dtype(xt, "x", SABLE_DTYPE_F32);
    const bool packed = is_packed_weight(wt.dtype);
    if (!packed) check_dtype(wt, "w", SABLE_DTYPE_F32);
    check_dtype(ot, "out", SABLE_DTYPE_F32);
    require(xt.ndim >= 1 && ot.ndim >= 1, "x and out must have at least one dim");
    require(wt.ndim == 2, "w must be [N, K], got {}", shape_str(wt));
    if (packed) {
      require(sable_tensor_is_contiguous(&wt), "a {} w {} must be contiguous", dtype_name(wt.dtype),
              shape_str(wt));
      require(wt.shape[1] % row_granule(wt.dtype) == 0,
              "w {} rows are not whole {} blocks of {} elements", shape_str(wt),
              dtype_name(wt.dtype), row_granule(wt.dtype));
    }
    Rows wm;
    if (packed) {
      wm.rows = wt.shape[0];
      wm.cols = wt.shape[1];
    } else {
      wm = matrix(wt, "w");
    }
    // x and out may carry K / N over several trailing dims ([T, Hq, D] into o_proj).
    const SableTensor xf = fold_trailing(xt, wm.cols), of = fold_trailing(ot, wm.rows);
    const Rows xm = matrix(xf, "x"), om = matrix(of, "out");
    const int64_t m = xm.rows, k = xm.cols, n = wm.rows;
    require(wm.cols == k, "x {} and w {} disagree on K ({} vs {})", shape_str(xt), shape_str(wt),
            k, wm.cols);
    require(om.rows == m && om.cols == n, "out {} must be [{}, {}]", shape_str(ot), m, n);
    const float* b = nullptr;
    if (bias != nullptr) {
      const SableTensor& bt = check_tensor(bias, "bias");
      check_dtype(bt, "bias", SABLE_DTYPE_F32);
      require(sable_tensor_numel(&bt) == n && sable_tensor_is_contiguous(&bt),
              "bias {} must be a contiguous [{}]", shape_str(bt), n);
      b = static_cast<const float*>(bt.data);
    }
    const int64_t kMaxBlas = INT32_MAX;
    require(m < kMaxBlas && n < kMaxBlas && k < kMaxBlas && xm.stride < kMaxBlas &&
                wm.stride < kMaxBlas && om.stride < kMaxBlas,
            "gemm dims exceed the BLAS integer range");
    if (packed) {
      packed_gemm(wt.dtype, wt.data, xm.row<float>(0), xm.stride, b, om.row<float>(0), om.stride,
                  m, n, k, (wt.reserved & kPreciseActivations) != 0);
      return;
    }
    sgemm_xwt(xm.row<float>(0), xm.stride, wm.row<float>(0), wm.stride, b, om.row<float>(0),
              om.stride, m, n, k);
  });
}

}  // namespace sable::ops::cpu
