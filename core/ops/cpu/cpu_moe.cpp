// Mixture-of-experts on the CPU: routing (softmax/sigmoid scores, top-k, renormalisation, expert
// recording) and the fused expert computation. Experts run as grouped GEMMs: the tokens routed to
// one expert are gathered into a block, pushed through gate_up, act·mul and down as two BLAS calls,
// and scattered back with their routing weights (never one GEMM per token).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/cpu/cpu_common.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/thread_pool.h"
#include "core/ops/expert_recorder.h"

namespace sable::ops::cpu {

namespace {

// A contiguous [rows, cols] tensor of the given dtype.
void check_matrix(const SableTensor& t, const char* name, int32_t dtype, int64_t rows,
                  int64_t cols) {
  check_dtype(t, name, dtype);
  require(t.ndim == 2 && t.shape[0] == rows && t.shape[1] == cols &&
              sable_tensor_is_contiguous(&t),
          "{} must be a contiguous [{}, {}], got {}", name, rows, cols, shape_str(t));
}

}  // namespace

SableStatus moe_route(SableOpsContext* ctx, int32_t layer, const SableTensor* logits,
                      int32_t top_k, int32_t scoring, int32_t renormalize, SableTensor* weights,
                      SableTensor* ids) {
  return run_op(ctx, "moe_route", [&] {
    const SableTensor& lt = check_tensor(logits, "logits");
    check_float(lt, "logits");
    require(lt.ndim == 2, "logits must be [T, E], got {}", shape_str(lt));
    const Rows lr = rows_of(lt, "logits");
    const int64_t tokens = lr.rows, experts = lr.cols;
    require(top_k >= 1 && top_k <= experts, "top_k {} must be in [1, {}]", top_k, experts);
    require(scoring == SABLE_MOE_SOFTMAX || scoring == SABLE_MOE_SIGMOID, "unknown scoring {}",
            scoring);
    check_matrix(check_tensor(weights, "weights"), "weights", SABLE_DTYPE_F32, tokens, top_k);
    check_matrix(check_tensor(ids, "ids"), "ids", SABLE_DTYPE_I32, tokens, top_k);
    auto* w_out = static_cast<float*>(weights->data);
    auto* id_out = static_cast<int32_t*>(ids->data);
    // Rows in contiguous ranges over the pool (each range with its own score buffers).
    const int64_t ranges = tokens * experts >= (1 << 14) ? std::min<int64_t>(tokens, 4 * threads()) : 1;
    parallel_for(ranges, threads(), [&](int64_t c) {
      std::vector<float> s(static_cast<size_t>(experts));
      std::vector<int32_t> order(static_cast<size_t>(experts));
      for (int64_t t = tokens * c / ranges; t < tokens * (c + 1) / ranges; ++t) {
        to_f32(lr.row<char>(t), lr.dtype, s.data(), experts);
        if (scoring == SABLE_MOE_SOFTMAX) {
          const float mx = *std::max_element(s.begin(), s.end());
          float sum = 0.0f;
          for (float& v : s) sum += (v = std::exp(v - mx));
          for (float& v : s) v /= sum;
        } else {
          for (float& v : s) v = 1.0f / (1.0f + std::exp(-v));
        }
        // Highest scores first; equal scores keep the lower expert index (as torch.topk).
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                          [&](int32_t a, int32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
        float sel = 0.0f;
        for (int32_t j = 0; j < top_k; ++j) sel += s[order[j]];
        const float norm = (renormalize && sel > 0.0f) ? 1.0f / sel : 1.0f;
        for (int32_t j = 0; j < top_k; ++j) {
          id_out[t * top_k + j] = order[j];
          w_out[t * top_k + j] = s[order[j]] * norm;
        }
      }
    });
    if (ctx != nullptr && ctx->expert_recorder != nullptr) {
      ctx->expert_recorder->record(layer, std::span<const int32_t>(
                                              id_out, static_cast<size_t>(tokens * top_k)));
    }
  });
}

namespace {

// Scratch floats for one op: from the context's arena (rolled back when done), else the heap.
class Scratch {
 public:
  explicit Scratch(SableOpsContext* ctx)
      : arena_(ctx != nullptr ? ctx->arena : nullptr),
        mark_(arena_ ? arena_->mark() : Arena::Mark{}) {}
  ~Scratch() {
    if (arena_) arena_->release(mark_);
  }
  float* floats(int64_t n) {
    if (arena_) {
      void* p = arena_->allocate(static_cast<size_t>(n) * sizeof(float), 64);
      if (p == nullptr) throw OpError(SABLE_ERR_OUT_OF_MEMORY, "scratch arena exhausted");
      return static_cast<float*>(p);
    }
    heap_.emplace_back(static_cast<size_t>(n));
    return heap_.back().data();
  }

 private:
  Arena* arena_;
  Arena::Mark mark_;
  std::vector<std::vector<float>> heap_;
};

}  // namespace

SableStatus moe_experts(SableOpsContext* ctx, const SableTensor* x, const SableTensor* w_gate_up,
                        const SableTensor* w_down, const SableTensor* weights,
                        const SableTensor* ids, int32_t act, SableTensor* out) {
  return run_op(ctx, "moe_experts", [&] {
    require(valid_activation(act), "unknown activation {}", act);
    const SableTensor& xt = check_tensor(x, "x");
    const SableTensor& gt = check_tensor(w_gate_up, "w_gate_up");
    const SableTensor& dt = check_tensor(w_down, "w_down");
    const SableTensor& ot = check_tensor(out, "out");
    check_dtype(xt, "x", SABLE_DTYPE_F32);
    check_dtype(gt, "w_gate_up", SABLE_DTYPE_F32);
    check_dtype(dt, "w_down", SABLE_DTYPE_F32);
    check_dtype(ot, "out", SABLE_DTYPE_F32);
    require(xt.ndim == 2, "x must be [T, H], got {}", shape_str(xt));
    const Rows xr = rows_of(xt, "x"), orr = rows_of(ot, "out");
    const int64_t tokens = xr.rows, hidden = xr.cols;
    require(gt.ndim == 3 && gt.shape[2] == hidden && gt.shape[1] % 2 == 0 &&
                sable_tensor_is_contiguous(&gt),
            "w_gate_up must be a contiguous [E, 2I, {}], got {}", hidden, shape_str(gt));
    const int64_t experts = gt.shape[0], inter = gt.shape[1] / 2;
    require(dt.ndim == 3 && dt.shape[0] == experts && dt.shape[1] == hidden &&
                dt.shape[2] == inter && sable_tensor_is_contiguous(&dt),
            "w_down must be a contiguous [{}, {}, {}], got {}", experts, hidden, inter,
            shape_str(dt));
    require(orr.rows == tokens && orr.cols == hidden, "out {} must be [{}, {}]", shape_str(ot),
            tokens, hidden);
    const SableTensor& idt = check_tensor(ids, "ids");
    require(idt.ndim == 2 && idt.shape[0] == tokens, "ids must be [{}, k], got {}", tokens,
            shape_str(idt));
    const int64_t k = idt.shape[1];
    check_matrix(idt, "ids", SABLE_DTYPE_I32, tokens, k);
    check_matrix(check_tensor(weights, "weights"), "weights", SABLE_DTYPE_F32, tokens, k);
    const auto* id = static_cast<const int32_t*>(idt.data);
    const auto* wt = static_cast<const float*>(weights->data);
    for (int64_t i = 0; i < tokens * k; ++i) {
      require(id[i] >= 0 && id[i] < experts, "ids[{}] = {} is outside [0, {})", i, id[i], experts);
    }

    // Counting sort of the (token, slot) pairs by expert.
    std::vector<int64_t> start(static_cast<size_t>(experts) + 1, 0);
    for (int64_t i = 0; i < tokens * k; ++i) ++start[static_cast<size_t>(id[i]) + 1];
    for (int64_t e = 0; e < experts; ++e) start[e + 1] += start[e];
    std::vector<int64_t> pairs(static_cast<size_t>(tokens * k));
    {
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t i = 0; i < tokens * k; ++i) pairs[static_cast<size_t>(fill[id[i]]++)] = i;
    }
    int64_t max_n = 0;
    for (int64_t e = 0; e < experts; ++e) max_n = std::max(max_n, start[e + 1] - start[e]);

    Scratch scratch(ctx);
    float* acc = scratch.floats(tokens * hidden);
    float* xg = scratch.floats(max_n * hidden);
    float* gu = scratch.floats(max_n * 2 * inter);
    float* a = scratch.floats(max_n * inter);
    float* y = scratch.floats(max_n * hidden);
    std::fill(acc, acc + tokens * hidden, 0.0f);
    const auto* wgu = static_cast<const float*>(gt.data);
    const auto* wd = static_cast<const float*>(dt.data);

    for (int64_t e = 0; e < experts; ++e) {
      const int64_t n = start[e + 1] - start[e];
      if (n == 0) continue;
      const int64_t* p = pairs.data() + start[e];
      parallel_rows(n, n * hidden >= (1 << 14), [&](int64_t r) {
        std::memcpy(xg + r * hidden, xr.row<float>(p[r] / k), static_cast<size_t>(hidden) * 4);
      });
      sgemm_xwt(xg, hidden, wgu + e * 2 * inter * hidden, hidden, nullptr, gu, 2 * inter, n,
                2 * inter, hidden);
      act_mul_rows(act, gu, 2 * inter, a, inter, n, inter);
      sgemm_xwt(a, inter, wd + e * hidden * inter, inter, nullptr, y, hidden, n, hidden, inter);
      // Sequential over rows: a token may (in malformed input) pick one expert twice.
      for (int64_t r = 0; r < n; ++r) {
        float* dst = acc + (p[r] / k) * hidden;
        const float w = wt[p[r]];
        const float* src = y + r * hidden;
        for (int64_t h = 0; h < hidden; ++h) dst[h] += w * src[h];
      }
    }
    for (int64_t t = 0; t < tokens; ++t) {
      std::memcpy(orr.row<float>(t), acc + t * hidden, static_cast<size_t>(hidden) * 4);
    }
  });
}

}  // namespace sable::ops::cpu
