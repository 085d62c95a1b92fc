// Index-driven CPU ops: embedding lookup (whole or one rank's vocabulary shard), row gathering
// before the LM head, and argmax.
#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/thread_pool.h"
#include "core/ops/cpu/qblocks.h"

namespace sable::ops::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 14;

// Ids as a contiguous I32 list, each checked against [0, limit).
const int32_t* checked_ids(const SableTensor* t, const char* name, int64_t limit, int64_t* count) {
  const SableTensor& it = check_tensor(t, name);
  check_dtype(it, name, SABLE_DTYPE_I32);
  require(sable_tensor_is_contiguous(&it), "{} must be contiguous", name);
  const auto* ids = static_cast<const int32_t*>(it.data);
  *count = sable_tensor_numel(&it);
  for (int64_t i = 0; i < *count; ++i) {
    require(ids[i] >= 0 && ids[i] < limit, "{}[{}] = {} is outside [0, {})", name, i, ids[i],
            limit);
  }
  return ids;
}

// out[t] = table[id[t] - first] for ids inside the table's rows, zeros for the others (a float
// table, F32 or the table's dtype out).
void lookup_rows(const SableTensor& tt, const int32_t* id, int64_t n, int64_t first,
                 const SableTensor& ot) {
  check_float(tt, "table");
  require(tt.ndim == 2, "table must be [V, H], got {}", shape_str(tt));
  require(ot.dtype == SABLE_DTYPE_F32 || ot.dtype == tt.dtype,
          "out must be F32 or the table's dtype {}, got {}", dtype_name(tt.dtype),
          dtype_name(ot.dtype));
  const Rows tr = rows_of(tt, "table"), orr = rows_of(ot, "out");
  require(orr.rows == n && orr.cols == tr.cols, "out {} must be [{}, {}]", shape_str(ot), n,
          tr.cols);
  const bool same = ot.dtype == tt.dtype;
  const int64_t bytes = tr.cols * tr.esize;
  parallel_rows(n, n * tr.cols >= kParallelMin, [&](int64_t t) {
    const int64_t row = static_cast<int64_t>(id[t]) - first;
    if (row < 0 || row >= tr.rows) {
      std::memset(orr.row<char>(t), 0, static_cast<size_t>(orr.cols * orr.esize));
    } else if (same) {
      std::memcpy(orr.row<char>(t), tr.row<char>(row), static_cast<size_t>(bytes));
    } else {
      to_f32(tr.row<char>(row), tt.dtype, orr.row<float>(t), tr.cols);
    }
  });
}

}  // namespace

SableStatus embedding(SableOpsContext* ctx, const SableTensor* table, const SableTensor* ids,
                      SableTensor* out) {
  return run_op(ctx, "embedding", [&] {
    const SableTensor& tt = check_tensor(table, "table");
    const SableTensor& ot = check_tensor(out, "out");
    if (sable_dtype_block_elems(tt.dtype) > 0) {  // a quantized table: unpack the rows asked for
      require(tt.ndim == 2 && sable_tensor_is_contiguous(&tt), "table must be a contiguous [V, H]");
      check_dtype(ot, "out", SABLE_DTYPE_F32);
      require(tt.shape[1] % row_granule(tt.dtype) == 0, "table {} rows are not whole {} blocks",
              shape_str(tt), dtype_name(tt.dtype));
      const Rows orr = rows_of(ot, "out");
      int64_t n = 0;
      const int32_t* id = checked_ids(ids, "ids", tt.shape[0], &n);
      require(orr.rows == n && orr.cols == tt.shape[1] && orr.uniform, "out {} must be [{}, {}]",
              shape_str(ot), n, tt.shape[1]);
      dequantize_rows(tt.dtype, tt.data, tt.shape[1], id, n, orr.row<float>(0),
                      n > 1 ? orr.stride : tt.shape[1]);
      return;
    }
    require(tt.ndim == 2, "table must be [V, H], got {}", shape_str(tt));
    int64_t n = 0;
    const int32_t* id = checked_ids(ids, "ids", tt.shape[0], &n);
    lookup_rows(tt, id, n, 0, ot);
  });
}

SableStatus embedding_shard(SableOpsContext* ctx, const SableTensor* table, const SableTensor* ids,
                            int64_t first_id, SableTensor* out) {
  return run_op(ctx, "embedding_shard", [&] {
    const SableTensor& tt = check_tensor(table, "table");
    const SableTensor& ot = check_tensor(out, "out");
    require(first_id >= 0, "first_id must be >= 0, got {}", first_id);
    const SableTensor& it = check_tensor(ids, "ids");
    check_dtype(it, "ids", SABLE_DTYPE_I32);
    require(sable_tensor_is_contiguous(&it), "ids must be contiguous");
    // Any id is allowed: the ones outside this shard read as zero rows.
    lookup_rows(tt, static_cast<const int32_t*>(it.data), sable_tensor_numel(&it), first_id, ot);
  });
}

SableStatus gather_rows(SableOpsContext* ctx, const SableTensor* x, const SableTensor* rows,
                        SableTensor* out) {
  return run_op(ctx, "gather_rows", [&] {
    const SableTensor& xt = check_tensor(x, "x");
    const SableTensor& ot = check_tensor(out, "out");
    require(xt.ndim >= 1, "x must have at least one dim");
    require(ot.dtype == xt.dtype, "out is {} but x is {}", dtype_name(ot.dtype),
            dtype_name(xt.dtype));
    require(sable_dtype_size(xt.dtype) > 0, "x is {}: block-quantized rows cannot be gathered",
            dtype_name(xt.dtype));
    const Rows xr = rows_of(xt, "x"), orr = rows_of(ot, "out");
    int64_t n = 0;
    const int32_t* idx = checked_ids(rows, "rows", xr.rows, &n);
    require(orr.rows == n && orr.cols == xr.cols, "out {} must be [{}, {}]", shape_str(ot), n,
            xr.cols);
    const size_t bytes = static_cast<size_t>(xr.cols * xr.esize);
    for (int64_t i = 0; i < n; ++i) std::memcpy(orr.row<char>(i), xr.row<char>(idx[i]), bytes);
  });
}

SableStatus argmax(SableOpsContext* ctx, const SableTensor* x, SableTensor* out) {
  return run_op(ctx, "argmax", [&] {
    const SableTensor& xt = check_tensor(x, "x");
    const SableTensor& ot = check_tensor(out, "out");
    check_dtype(xt, "x", SABLE_DTYPE_F32);
    check_dtype(ot, "out", SABLE_DTYPE_I32);
    require(xt.ndim >= 1, "x must be [T, V]");
    const Rows xr = rows_of(xt, "x");
    require(xr.cols > 0, "x {} has an empty last dim", shape_str(xt));
    require(sable_tensor_is_contiguous(&ot) && sable_tensor_numel(&ot) == xr.rows,
            "out {} must be a contiguous [{}]", shape_str(ot), xr.rows);
    auto* o = static_cast<int32_t*>(ot.data);
    parallel_rows(xr.rows, xr.rows * xr.cols >= kParallelMin, [&](int64_t r) {
      const float* v = xr.row<float>(r);
      int64_t best = 0;
      for (int64_t i = 1; i < xr.cols; ++i) {
        if (v[i] > v[best]) best = i;  // strict: ties keep the lowest index
      }
      o[r] = static_cast<int32_t>(best);
    });
  });
}

}  // namespace sable::ops::cpu
