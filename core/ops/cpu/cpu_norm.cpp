// Normalisation and position ops on the CPU: RMSNorm and LayerNorm (with the fused residual add)
// and rotary embedding (neox and interleaved, partial rot_dim). One row (token or token-head) per
// loop iteration, rows spread over the thread pool; fp32 accumulation.
#include <cmath>

#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/thread_pool.h"

namespace sable::ops::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 13;

// Validates x/residual/out of a norm and returns their row views.
struct NormViews {
  Rows x, res, out;
  bool has_res = false;
};
NormViews norm_views(const SableTensor* x, SableTensor* residual, SableTensor* out) {
  const SableTensor& xt = check_tensor(x, "x");
  const SableTensor& ot = check_tensor(out, "out");
  check_dtype(xt, "x", SABLE_DTYPE_F32);
  check_dtype(ot, "out", SABLE_DTYPE_F32);
  require(xt.ndim >= 1, "x must have at least one dim");
  NormViews v;
  v.x = rows_of(xt, "x");
  v.out = rows_of(ot, "out");
  require(v.out.rows == v.x.rows && v.out.cols == v.x.cols, "out {} does not match x {}",
          shape_str(ot), shape_str(xt));
  require(v.x.cols > 0, "x {} has an empty last dim", shape_str(xt));
  if (residual != nullptr) {
    const SableTensor& rt = check_tensor(residual, "residual");
    check_dtype(rt, "residual", SABLE_DTYPE_F32);
    v.res = rows_of(rt, "residual");
    require(v.res.rows == v.x.rows && v.res.cols == v.x.cols, "residual {} does not match x {}",
            shape_str(rt), shape_str(xt));
    v.has_res = true;
  }
  return v;
}

const float* vector_param(const SableTensor* t, const char* name, int64_t n) {
  if (t == nullptr) return nullptr;
  const SableTensor& w = check_tensor(t, name);
  check_dtype(w, name, SABLE_DTYPE_F32);
  require(sable_tensor_numel(&w) == n && sable_tensor_is_contiguous(&w),
          "{} {} must be a contiguous [{}] vector", name, shape_str(w), n);
  return static_cast<const float*>(w.data);
}

// The row to normalise: x, or residual after residual += x.
inline const float* norm_input(const NormViews& v, int64_t r) {
  const float* x = v.x.row<float>(r);
  if (!v.has_res) return x;
  float* res = v.res.row<float>(r);
  for (int64_t i = 0; i < v.x.cols; ++i) res[i] += x[i];
  return res;
}

}  // namespace

SableStatus rms_norm(SableOpsContext* ctx, const SableTensor* x, SableTensor* residual,
                     const SableTensor* weight, float eps, float weight_offset, SableTensor* out) {
  return run_op(ctx, "rms_norm", [&] {
    const NormViews v = norm_views(x, residual, out);
    require(weight != nullptr, "weight is NULL");
    const float* w = vector_param(weight, "weight", v.x.cols);
    require(eps >= 0.0f, "eps must be >= 0, got {}", eps);
    const int64_t n = v.x.cols;
    parallel_rows(v.x.rows, v.x.rows * n >= kParallelMin, [&](int64_t r) {
      const float* in = norm_input(v, r);
      float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < n; ++i) ss += in[i] * in[i];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
      float* o = v.out.row<float>(r);
      for (int64_t i = 0; i < n; ++i) o[i] = in[i] * inv * (w[i] + weight_offset);
    });
  });
}

SableStatus layer_norm(SableOpsContext* ctx, const SableTensor* x, SableTensor* residual,
                       const SableTensor* weight, const SableTensor* bias, float eps,
                       SableTensor* out) {
  return run_op(ctx, "layer_norm", [&] {
    const NormViews v = norm_views(x, residual, out);
    const float* w = vector_param(weight, "weight", v.x.cols);
    const float* b = vector_param(bias, "bias", v.x.cols);
    require(eps >= 0.0f, "eps must be >= 0, got {}", eps);
    const int64_t n = v.x.cols;
    parallel_rows(v.x.rows, v.x.rows * n >= kParallelMin, [&](int64_t r) {
      const float* in = norm_input(v, r);
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < n; ++i) sum += in[i];
      const float mean = sum / static_cast<float>(n);
      float var = 0.0f;
#pragma omp simd reduction(+ : var)
      for (int64_t i = 0; i < n; ++i) var += (in[i] - mean) * (in[i] - mean);
      const float inv = 1.0f / std::sqrt(var / static_cast<float>(n) + eps);
      float* o = v.out.row<float>(r);
      for (int64_t i = 0; i < n; ++i) {
        float y = (in[i] - mean) * inv;
        if (w) y *= w[i];
        if (b) y += b[i];
        o[i] = y;
      }
    });
  });
}

namespace {

// q or k as [T, H, D] with unit-stride D; nullptr allowed.
struct HeadView {
  float* data = nullptr;
  int64_t heads = 0, dim = 0, t_stride = 0, h_stride = 0;
};
HeadView head_view(SableTensor* t, const char* name, int64_t tokens) {
  HeadView v;
  if (t == nullptr) return v;
  const SableTensor& x = check_tensor(t, name);
  check_dtype(x, name, SABLE_DTYPE_F32);
  require(x.ndim == 3, "{} must be [T, H, D], got {}", name, shape_str(x));
  require(x.shape[0] == tokens, "{} {} has {} tokens but positions has {}", name, shape_str(x),
          x.shape[0], tokens);
  require(x.strides[2] == 1 || x.shape[2] <= 1, "{} must have a unit stride in D", name);
  v.data = static_cast<float*>(x.data);
  v.heads = x.shape[1];
  v.dim = x.shape[2];
  v.t_stride = x.strides[0];
  v.h_stride = x.strides[1];
  return v;
}

void rope_heads(const HeadView& v, const int32_t* pos, const float* cs, int64_t cs_stride,
                int32_t rot, int32_t style, int64_t tokens) {
  if (v.data == nullptr) return;
  const int32_t half = rot / 2;
  const int64_t rows = tokens * v.heads;
  parallel_rows(rows, rows * rot >= kParallelMin, [&](int64_t r) {
    const int64_t t = r / v.heads, h = r % v.heads;
    float* x = v.data + t * v.t_stride + h * v.h_stride;
    const float* c = cs + static_cast<int64_t>(pos[t]) * cs_stride;
    const float* s = c + half;
    if (style == SABLE_ROPE_NEOX) {
      for (int32_t i = 0; i < half; ++i) {
        const float a = x[i], b = x[i + half];
        x[i] = a * c[i] - b * s[i];
        x[i + half] = b * c[i] + a * s[i];
      }
    } else {
      for (int32_t i = 0; i < half; ++i) {
        const float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * c[i] - b * s[i];
        x[2 * i + 1] = b * c[i] + a * s[i];
      }
    }
  });
}

}  // namespace

SableStatus rope(SableOpsContext* ctx, SableTensor* q, SableTensor* k,
                 const SableTensor* positions, const SableTensor* cos_sin, int32_t rot_dim,
                 int32_t style) {
  return run_op(ctx, "rope", [&] {
    const SableTensor& pt = check_tensor(positions, "positions");
    check_dtype(pt, "positions", SABLE_DTYPE_I32);
    require(pt.ndim == 1 && sable_tensor_is_contiguous(&pt), "positions must be a contiguous [T], got {}",
            shape_str(pt));
    const SableTensor& ct = check_tensor(cos_sin, "cos_sin");
    check_dtype(ct, "cos_sin", SABLE_DTYPE_F32);
    require(style == SABLE_ROPE_NEOX || style == SABLE_ROPE_INTERLEAVED, "unknown rope style {}",
            style);
    require(rot_dim > 0 && rot_dim % 2 == 0, "rot_dim must be positive and even, got {}", rot_dim);
    require(ct.ndim == 2 && ct.shape[1] == rot_dim && ct.strides[1] == 1,
            "cos_sin must be [max_pos, {}] with unit column stride, got {}", rot_dim, shape_str(ct));
    const int64_t tokens = pt.shape[0];
    const HeadView qv = head_view(q, "q", tokens), kv = head_view(k, "k", tokens);
    require(q != nullptr || k != nullptr, "q and k are both NULL");
    if (q) require(rot_dim <= qv.dim, "rot_dim {} exceeds q head dim {}", rot_dim, qv.dim);
    if (k) require(rot_dim <= kv.dim, "rot_dim {} exceeds k head dim {}", rot_dim, kv.dim);
    const auto* pos = static_cast<const int32_t*>(pt.data);
    for (int64_t t = 0; t < tokens; ++t) {
      require(pos[t] >= 0 && pos[t] < ct.shape[0],
              "position {} of token {} is outside the cos/sin cache [0, {})", pos[t], t,
              ct.shape[0]);
    }
    const auto* cs = static_cast<const float*>(ct.data);
    rope_heads(qv, pos, cs, ct.strides[0], rot_dim, style, tokens);
    rope_heads(kv, pos, cs, ct.strides[0], rot_dim, style, tokens);
  });
}

}  // namespace sable::ops::cpu
