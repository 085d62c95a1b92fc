// The CPU encoder attention (ops attention_bidirectional): every token attends to all tokens of its
// own sequence, with no KV cache. Sequences are read off the positions (runs 0, 1, 2, ...). Per
// sequence and query head: S = q·kᵀ·scale through OpenBLAS, a row softmax, out = S·v. fp32.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/thread_pool.h"

namespace sable::ops::cpu {

namespace {

// [T, H, D] with a unit-stride last dim and uniform token stride: the base of head h at token t
// is data + t * strides[0] + h * strides[1].
void check_heads(const SableTensor& t, const char* name, int64_t tokens, int64_t d) {
  check_dtype(t, name, SABLE_DTYPE_F32);
  require(t.ndim == 3 && t.shape[0] == tokens && t.shape[2] == d && t.strides[2] == 1,
          "{} must be [{}, heads, {}] with unit-stride head dims, got {}", name, tokens, d,
          shape_str(t));
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> sequences_of_positions(const int32_t* pos, int64_t t) {
  std::vector<std::pair<int64_t, int64_t>> runs;  // [begin, end)
  int64_t begin = 0;
  for (int64_t i = 0; i < t; ++i) {
    if (pos[i] != i - begin) {
      require(pos[i] == 0,
              "positions must be runs 0, 1, 2, ... per sequence (token {} has position {}, "
              "expected 0 or {})",
              i, pos[i], i - begin);
      runs.emplace_back(begin, i);
      begin = i;
    }
  }
  if (t > 0) runs.emplace_back(begin, t);
  return runs;
}

SableStatus attention_bidirectional(SableOpsContext* ctx, const SableTensor* q,
                                    const SableTensor* k, const SableTensor* v,
                                    const SableTensor* positions, float scale, SableTensor* out) {
  return run_op(ctx, "attention_bidirectional", [&] {
    const SableTensor& qt = check_tensor(q, "q");
    const SableTensor& kt = check_tensor(k, "k");
    const SableTensor& vt = check_tensor(v, "v");
    const SableTensor& ot = check_tensor(out, "out");
    const SableTensor& pt = check_tensor(positions, "positions");
    require(qt.ndim == 3 && qt.shape[2] > 0, "q must be [T, Hq, D], got {}", shape_str(qt));
    const int64_t t = qt.shape[0], hq = qt.shape[1], d = qt.shape[2];
    check_heads(qt, "q", t, d);
    check_heads(kt, "k", t, d);
    check_heads(vt, "v", t, d);
    check_heads(ot, "out", t, d);
    const int64_t hk = kt.shape[1];
    require(vt.shape[1] == hk && hk > 0 && hq % hk == 0,
            "k {} and v {} must have the same head count dividing q's {}", shape_str(kt),
            shape_str(vt), hq);
    require(ot.shape[1] == hq, "out {} must have q's {} heads", shape_str(ot), hq);
    check_dtype(pt, "positions", SABLE_DTYPE_I32);
    require(pt.ndim == 1 && pt.shape[0] == t, "positions must be [{}], got {}", t, shape_str(pt));
    const float s = scale > 0.0f ? scale : 1.0f / std::sqrt(static_cast<float>(d));
    const auto runs = sequences_of_positions(static_cast<const int32_t*>(pt.data), t);
    const auto* qd = static_cast<const float*>(qt.data);
    const auto* kd = static_cast<const float*>(kt.data);
    const auto* vd = static_cast<const float*>(vt.data);
    auto* od = static_cast<float*>(ot.data);
    std::vector<float> scores;
    for (const auto& [begin, end] : runs) {
      const int64_t n = end - begin;
      scores.resize(static_cast<size_t>(n * n));
      for (int64_t h = 0; h < hq; ++h) {
        const int64_t g = h / (hq / hk);
        const float* qp = qd + begin * qt.strides[0] + h * qt.strides[1];
        const float* kp = kd + begin * kt.strides[0] + g * kt.strides[1];
        const float* vp = vd + begin * vt.strides[0] + g * vt.strides[1];
        float* op = od + begin * ot.strides[0] + h * ot.strides[1];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n),
                    static_cast<blasint>(n), static_cast<blasint>(d), s, qp,
                    static_cast<blasint>(qt.strides[0]), kp, static_cast<blasint>(kt.strides[0]),
                    0.0f, scores.data(), static_cast<blasint>(n));
        parallel_rows(n, n * n >= (1 << 14), [&](int64_t i) {
          float* row = scores.data() + i * n;
          const float mx = *std::max_element(row, row + n);
          float sum = 0.0f;
          for (int64_t j = 0; j < n; ++j) {
            row[j] = std::exp(row[j] - mx);
            sum += row[j];
          }
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < n; ++j) row[j] *= inv;
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(n),
                    static_cast<blasint>(d), static_cast<blasint>(n), 1.0f, scores.data(),
                    static_cast<blasint>(n), vp, static_cast<blasint>(vt.strides[0]), 0.0f, op,
                    static_cast<blasint>(ot.strides[0]));
      }
    }
  });
}

}  // namespace sable::ops::cpu
