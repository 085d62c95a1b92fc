// The reference attention backend: causal attention over the core's paged KV cache on the CPU.
//
// plan() copies the batch layout (host arrays) and checks it against the pool; run() first writes
// the new tokens' K/V into their pages for the layer, then, for every (new token, query head),
// computes softmax(q·Kᵀ·scale)·V over the cached prefix and the new tokens up to the token's own
// position (and inside the sliding window when one is set). fp32 throughout, any head dim, GQA/MQA.
// The work is split into units of (token, KV head) - a decode step's (sequence, KV head) - each
// taking that KV head's query heads (sliced further when a batch has fewer units than kMinUnits),
// and run on the host's CPU thread pool (the ops table's parallel_for, ABI 1.6: the threads of
// --cpu-threads that the GEMMs use) when there is more than one unit and enough work to be worth
// waking it; small steps (batch-1 decode at a short context) stay on the calling thread. Every
// output is computed by the same arithmetic whichever thread runs it, so results do not depend on
// the thread count. Without a pool (an ABI 1.5 host) everything runs on the calling thread; the
// plugin opens no OpenMP region (a region costs futex system calls on every layer, and a team of
// its own would compete with the pool for the cores). It is the yardstick the conformance suite
// holds other backends to, so it favours plainness over speed: a unit's query heads run through
// the vector kernel of attend_heads.h (each K/V row read once for the group, the rows' pool
// offsets resolved once) where the CPU has one, else through the plain per-head loop here, which
// SABLE_CPU_KERNELS=scalar keeps and the tests hold the kernels to.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "attend_heads.h"
#include "sable/attention.h"
#include "sable/cpp/error.h"
#include "sable/cpp/plugin.h"

namespace {

using sable::cpp::fail;
using sable_cpu_attention::AttendHeadsFn;

struct CpuAttention {
  const SableHostApi* host = nullptr;
  SableHostHandle* handle = nullptr;
  const SableOps* ops = nullptr;  // its parallel_for when the host has one (ABI 1.6), else null
  SableAttentionInit init{};
  std::vector<SableKvLayer> layers;
  // The planned batch.
  bool planned = false;
  int32_t num_seqs = 0, num_tokens = 0;
  std::vector<int32_t> qo_indptr, kv_indptr, kv_indices, kv_lens;
  std::vector<int32_t> token_seq;  // sequence of each new token
  // Each chunk's scores + accumulator, grown to the largest batch seen: steps do not allocate.
  std::vector<float> scratch;
  std::vector<int64_t> offsets;  // each task's pool offsets of a unit's rows, grown likewise
  AttendHeadsFn heads_fn = nullptr;  // the vector kernel, or null: the plain loop (attend_one)
};

// Pool tasks of a run() at most: enough for the pool's claiming to balance uneven (causal) rows;
// past it, each task takes every kMaxChunks-th unit (a share of early and late prefill rows).
constexpr int64_t kMaxChunks = 64;
// Units a batch is cut into at least when its query heads allow: a batch-1 decode step has one unit
// per KV head (2 on Qwen2.5-0.5B), too few for a pool of 16 threads.
constexpr int64_t kMinUnits = 16;
// Query heads a unit keeps at least when the vector kernel runs (see run()).
constexpr int64_t kMinSliceHeads = 3;
// Multiply-adds (q·k and p·v) below which the calling thread finishes before a pool task would
// pay off (~10-20 us here): SmolLM2's batch-1 decode up to a context of ~28.
constexpr int64_t kPoolWork = int64_t{1} << 15;

std::string shape_str(const SableTensor& t) {
  std::string s = "[";
  for (int32_t i = 0; i < t.ndim && i < SABLE_MAX_DIMS; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

void require(bool ok, const char* message) {
  if (!ok) fail(SABLE_ERR_INVALID_ARGUMENT, message);
}
void require(bool ok, const std::string& message) {
  if (!ok) fail(SABLE_ERR_INVALID_ARGUMENT, message);
}
// The message built only when the check fails: plan() checks every sequence and run() every
// layer's four tensors on every step, and building their messages up front took ~40 string
// allocations a layer (1 % of a SmolLM2 batch-1 step at one thread, serial at every thread count).
template <class F, class = std::enable_if_t<std::is_invocable_v<F>>>
void require(bool ok, F&& message) {
  if (!ok) fail(SABLE_ERR_INVALID_ARGUMENT, std::string(message()));
}

int32_t probe(int32_t device_type) { return device_type == SABLE_DEVICE_CPU ? 10 : 0; }

int32_t supports_head_dim(int32_t head_dim) { return head_dim > 0 ? 1 : 0; }

void check_pool(const SableTensor& t, const SableAttentionInit& in, const char* what, int32_t l) {
  const std::string name = std::string("layer ") + std::to_string(l) + " " + what;
  require(t.device_type == SABLE_DEVICE_CPU, name + " is not in host memory");
  require(t.dtype == SABLE_DTYPE_F32, name + ": the cpu backend needs an F32 KV pool");
  require(t.ndim == 4 && t.shape[1] == in.page_size && t.shape[2] == in.num_kv_heads &&
              t.shape[3] == in.head_dim && sable_tensor_is_contiguous(&t) && t.data != nullptr,
          name + " must be a contiguous [pages, " + std::to_string(in.page_size) + ", " +
              std::to_string(in.num_kv_heads) + ", " + std::to_string(in.head_dim) + "], got " +
              shape_str(t));
}

SableStatus create(const SableHostApi* host, SableHostHandle* h, const SableAttentionInit* init,
                   SableAttention** out) {
  SABLE_TRY {
    require(init != nullptr && out != nullptr, "init and out must not be NULL");
    require(init->device_type == SABLE_DEVICE_CPU, "the cpu attention backend runs on the CPU only");
    require(init->num_layers > 0, "num_layers must be positive");
    require(init->num_q_heads > 0 && init->num_kv_heads > 0 &&
                init->num_q_heads % init->num_kv_heads == 0,
            "num_q_heads (" + std::to_string(init->num_q_heads) +
                ") must be a positive multiple of num_kv_heads (" +
                std::to_string(init->num_kv_heads) + ")");
    require(init->head_dim > 0, "head_dim must be positive");
    require(init->page_size >= 1, "page_size must be >= 1");
    require(init->sliding_window >= 0, "sliding_window must be >= 0");
    require(init->layers != nullptr, "layers is NULL");
    auto a = std::make_unique<CpuAttention>();
    a->host = host;
    a->handle = h;
    if (host != nullptr && SABLE_HAS(host->ops, parallel_for) && host->ops->parallel_for != nullptr)
      a->ops = host->ops;
    a->init = *init;
    const char* kernel = "plain";
    a->heads_fn = sable_cpu_attention::pick_attend_heads(&kernel);
    if (host != nullptr && host->log != nullptr)
      host->log(h, SABLE_LOG_DEBUG, (std::string("cpu attention: ") + kernel + " kernel").c_str());
    a->init.struct_size = sizeof(SableAttentionInit);
    a->layers.assign(init->layers, init->layers + init->num_layers);
    for (int32_t l = 0; l < init->num_layers; ++l) {
      check_pool(a->layers[l].k, *init, "K", l);
      check_pool(a->layers[l].v, *init, "V", l);
      require(a->layers[l].k.shape[0] == a->layers[l].v.shape[0],
              "layer " + std::to_string(l) + ": K and V have different page counts");
    }
    *out = reinterpret_cast<SableAttention*>(a.release());
    return SABLE_OK;
  }
  SABLE_CATCH(host, h)
}

void destroy(SableAttention* attn) { delete reinterpret_cast<CpuAttention*>(attn); }

SableStatus plan(SableAttention* attn, const SableAttentionBatch* batch) {
  if (attn == nullptr) return SABLE_ERR_INVALID_ARGUMENT;
  auto* a = reinterpret_cast<CpuAttention*>(attn);
  SABLE_TRY {
    a->planned = false;
    require(batch != nullptr, "batch is NULL");
    const int32_t n = batch->num_seqs;
    require(n >= 0 && batch->num_tokens >= 0, "negative num_seqs or num_tokens");
    require(n == 0 || (batch->qo_indptr && batch->kv_indptr && batch->kv_lens &&
                       (batch->kv_indices || batch->kv_indptr[n] == 0)),
            "batch arrays must not be NULL");
    const int64_t pages = a->layers[0].k.shape[0];
    const int32_t ps = a->init.page_size;
    std::vector<int32_t> qo(batch->qo_indptr, batch->qo_indptr + n + 1);
    std::vector<int32_t> kvp(batch->kv_indptr, batch->kv_indptr + n + 1);
    std::vector<int32_t> lens(batch->kv_lens, batch->kv_lens + n);
    require(n == 0 || (qo[0] == 0 && kvp[0] == 0), "qo_indptr[0] and kv_indptr[0] must be 0");
    require(n == 0 ? batch->num_tokens == 0 : qo[n] == batch->num_tokens, [&] {
      return "qo_indptr[num_seqs] must equal num_tokens (" + std::to_string(batch->num_tokens) +
             ")";
    });
    std::vector<int32_t> token_seq(static_cast<size_t>(batch->num_tokens));
    for (int32_t b = 0; b < n; ++b) {
      const auto seq = [b] { return "sequence " + std::to_string(b); };
      const int32_t new_len = qo[b + 1] - qo[b];
      require(new_len >= 0 && kvp[b + 1] >= kvp[b],
              [&] { return seq() + ": indptr arrays must not decrease"; });
      require(lens[b] >= new_len, [&] {
        return seq() + ": kv_len " + std::to_string(lens[b]) + " is shorter than its " +
               std::to_string(new_len) + " new tokens";
      });
      const int64_t need = (static_cast<int64_t>(lens[b]) + ps - 1) / ps;
      require(kvp[b + 1] - kvp[b] >= need, [&] {
        return seq() + ": " + std::to_string(kvp[b + 1] - kvp[b]) + " pages cannot hold " +
               std::to_string(lens[b]) + " tokens";
      });
      for (int32_t t = qo[b]; t < qo[b + 1]; ++t) token_seq[t] = b;
    }
    std::vector<int32_t> idx;
    if (n > 0) idx.assign(batch->kv_indices, batch->kv_indices + kvp[n]);
    for (size_t i = 0; i < idx.size(); ++i) {
      require(idx[i] >= 0 && idx[i] < pages, [&] {
        return "kv_indices[" + std::to_string(i) + "] = " + std::to_string(idx[i]) +
               " is outside the pool (" + std::to_string(pages) + " pages)";
      });
    }
    a->num_seqs = n;
    a->num_tokens = batch->num_tokens;
    a->qo_indptr = std::move(qo);
    a->kv_indptr = std::move(kvp);
    a->kv_indices = std::move(idx);
    a->kv_lens = std::move(lens);
    a->token_seq = std::move(token_seq);
    a->planned = true;
    return SABLE_OK;
  }
  SABLE_CATCH(a->host, a->handle)
}

// [T, heads, D] view with unit-stride D.
void check_heads(const SableTensor* t, const char* name, int32_t tokens, int32_t heads, int32_t d) {
  require(t != nullptr, [&] { return std::string(name) + " is NULL"; });
  require(t->device_type == SABLE_DEVICE_CPU && t->dtype == SABLE_DTYPE_F32,
          [&] { return std::string(name) + " must be an F32 CPU tensor"; });
  require(t->ndim == 3 && t->shape[0] == tokens && t->shape[1] == heads && t->shape[2] == d &&
              (t->strides[2] == 1 || d == 1) && (t->data != nullptr || tokens == 0),
          [&] {
            return std::string(name) + " must be [" + std::to_string(tokens) + ", " +
                   std::to_string(heads) + ", " + std::to_string(d) +
                   "] with unit stride in the last dim, got " + shape_str(*t);
          });
}

// Position of the new token t in its sequence (the batch's token_seq[t]).
inline int64_t position(const CpuAttention& a, int32_t t) {
  const int32_t b = a.token_seq[t];
  return a.kv_lens[b] - (a.qo_indptr[b + 1] - a.qo_indptr[b]) + (t - a.qo_indptr[b]);
}

// The pool row that holds position pos of sequence b.
inline int64_t slot_row(const CpuAttention& a, int32_t b, int64_t pos) {
  const int32_t ps = a.init.page_size;
  const int64_t page = a.kv_indices[static_cast<size_t>(a.kv_indptr[b] + pos / ps)];
  return page * ps + pos % ps;  // row in [pages * page_size, Hk, D]
}

// One query row against positions [lo, pos] of sequence b: softmax(q·Kᵀ·scale)·V into o. k and v
// point at the query's KV head in pool row 0 (row floats per pool row). Built twice on x86-64
// (target_clones): for x86-64-v3 (AVX2 + FMA), where the dot products run 8 wide (about 2x the
// baseline build on long contexts, bench/NOTES.md "int8 prefill"), and for the baseline; the loader
// picks the one this CPU runs.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void attend_one(const CpuAttention& a, int32_t b, int64_t lo, int64_t pos, const float* k,
                const float* v, int64_t row, const float* qv, float scale, int32_t D,
                float* scores, float* acc, float* o) {
  float mx = -INFINITY;
  for (int64_t p = lo; p <= pos; ++p) {
    const float* kr = k + slot_row(a, b, p) * row;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int32_t d = 0; d < D; ++d) dot += qv[d] * kr[d];
    scores[p - lo] = dot * scale;
    mx = std::max(mx, scores[p - lo]);
  }
  std::fill(acc, acc + D, 0.0f);
  float denom = 0.0f;
  for (int64_t p = lo; p <= pos; ++p) {
    const float w = std::exp(scores[p - lo] - mx);
    denom += w;
    const float* vr = v + slot_row(a, b, p) * row;
#pragma omp simd
    for (int32_t d = 0; d < D; ++d) acc[d] += w * vr[d];
  }
  const float inv = 1.0f / denom;
  for (int32_t d = 0; d < D; ++d) o[d] = acc[d] * inv;
}

// One run()'s attention: `units` units of (token t, KV head g, slice of its query heads), unit u =
// (t * hk + g) * slices + slice, cut into `tasks` strided tasks: task c takes units c, c + tasks,
// ..., so each gets a share of the long (late) rows of a causal prefill. A task's scratch (scores
// and the accumulator) is its own.
struct AttendJobs {
  const CpuAttention* a;
  const float *kp, *vp, *qd;
  float *od, *scratch;  // scratch: scratch_per_task floats per task
  int64_t* offsets;     // max_len per task
  int64_t row, q_stride0, q_stride1, units, slices, tasks, scratch_per_task, max_len;
  float scale;
};

// off[i] = the pool offset (floats) of position lo + i of sequence b, i <= pos - lo: one page
// lookup per page instead of a division per position and query head.
void row_offsets(const CpuAttention& a, int32_t b, int64_t lo, int64_t pos, int64_t row,
                 int64_t* off) {
  const int32_t ps = a.init.page_size;
  const int32_t* pages = a.kv_indices.data() + a.kv_indptr[b];
  int64_t p = lo;
  while (p <= pos) {
    const int64_t page = pages[p / ps], in = p % ps;
    const int64_t end = std::min<int64_t>(pos + 1, p - in + ps);
    for (int64_t base = (page * ps - (p - in)) * row; p < end; ++p) off[p - lo] = base + p * row;
  }
}

void attend_task(const AttendJobs& j, int64_t c) {
  const CpuAttention& a = *j.a;
  const int32_t hq = a.init.num_q_heads, hk = a.init.num_kv_heads, D = a.init.head_dim;
  const int32_t group = hq / hk, window = a.init.sliding_window;
  float* scores = j.scratch + c * j.scratch_per_task;
  float* acc = scores + (j.scratch_per_task - D);
  int64_t* off = j.offsets + c * j.max_len;
  for (int64_t u = c; u < j.units; u += j.tasks) {
    const int64_t slice = u % j.slices, tg = u / j.slices;
    const int32_t t = static_cast<int32_t>(tg / hk), g = static_cast<int32_t>(tg % hk);
    const int32_t b = a.token_seq[t];
    const int64_t pos = position(a, t);
    const int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    const int32_t h0 = g * group + static_cast<int32_t>(group * slice / j.slices);
    const int32_t h1 = g * group + static_cast<int32_t>(group * (slice + 1) / j.slices);
    if (a.heads_fn != nullptr) {
      row_offsets(a, b, lo, pos, j.row, off);
      a.heads_fn(j.kp + g * D, j.vp + g * D, off, pos - lo + 1, j.qd + t * j.q_stride0 + h0 * j.q_stride1,
                 j.q_stride1, h1 - h0, j.scale, D, scores,
                 j.od + (static_cast<int64_t>(t) * hq + h0) * D);
      continue;
    }
    for (int32_t h = h0; h < h1; ++h) {
      attend_one(a, b, lo, pos, j.kp + g * D, j.vp + g * D, j.row,
                 j.qd + t * j.q_stride0 + h * j.q_stride1, j.scale, D, scores, acc,
                 j.od + (static_cast<int64_t>(t) * hq + h) * D);
    }
  }
}

SableStatus run(SableAttention* attn, SableOpsContext* ctx, int32_t layer, const SableTensor* q,
                const SableTensor* k, const SableTensor* v, float scale, SableTensor* out) {
  if (attn == nullptr) return SABLE_ERR_INVALID_ARGUMENT;
  auto* a = reinterpret_cast<CpuAttention*>(attn);
  SABLE_TRY {
    require(a->planned, "run() before a successful plan()");
    require(layer >= 0 && layer < a->init.num_layers, [&] {
      return "layer " + std::to_string(layer) + " is outside [0, " +
             std::to_string(a->init.num_layers) + ")";
    });
    require(scale > 0.0f && std::isfinite(scale), "scale must be positive");
    const int32_t T = a->num_tokens, hq = a->init.num_q_heads, hk = a->init.num_kv_heads;
    const int32_t D = a->init.head_dim;
    check_heads(q, "q", T, hq, D);
    check_heads(k, "k", T, hk, D);
    check_heads(v, "v", T, hk, D);
    check_heads(out, "out", T, hq, D);
    require(sable_tensor_is_contiguous(out), "out must be contiguous");
    if (T == 0) return SABLE_OK;

    auto* kp = static_cast<float*>(a->layers[layer].k.data);
    auto* vp = static_cast<float*>(a->layers[layer].v.data);
    const int64_t row = static_cast<int64_t>(hk) * D;  // floats per pool row (one token)

    // 1. Append the new K/V into their pages (a copy: memory-bound, one thread).
    const auto* kn = static_cast<const float*>(k->data);
    const auto* vn = static_cast<const float*>(v->data);
    for (int32_t t = 0; t < T; ++t) {
      const int32_t b = a->token_seq[t];
      const int64_t r = slot_row(*a, b, position(*a, t));
      for (int32_t h = 0; h < hk; ++h) {
        std::memcpy(kp + r * row + h * D, kn + t * k->strides[0] + h * k->strides[1], sizeof(float) * D);
        std::memcpy(vp + r * row + h * D, vn + t * v->strides[0] + h * v->strides[1], sizeof(float) * D);
      }
    }

    // 2. Attention per unit (see AttendJobs); on the host's pool when the work is worth it.
    int32_t max_len = 0;
    int64_t work = 0;  // multiply-adds of q·k and p·v over the whole batch
    for (int32_t t = 0; t < T; ++t) {
      const int64_t span = position(*a, t) + 1, window = a->init.sliding_window;
      work += (window > 0 ? std::min(span, window) : span) * 2 * hq * D;
      max_len = std::max(max_len, a->kv_lens[a->token_seq[t]]);
    }
    const int64_t pairs = static_cast<int64_t>(T) * hk;
    // The vector kernel reads a unit's K/V rows once for all its query heads: a slice keeps 3 or
    // more of them (a batch-1 decode of SmolLM2-135M at 1 thread: 6.8 % of a step in 3 units
    // against 9.3 % in 9, each head's rows read again).
    const int64_t heads_per_slice = a->heads_fn != nullptr ? kMinSliceHeads : 1;
    const int64_t slices = std::max<int64_t>(
        1, std::min<int64_t>(hq / hk / heads_per_slice, (kMinUnits + pairs - 1) / pairs));
    const int64_t units = pairs * slices;
    const bool pool = a->ops != nullptr && units > 1 && work >= kPoolWork;
    const int64_t tasks = pool ? std::min(units, kMaxChunks) : 1;
    // scores of a unit's query heads (the plain loop: one head's) and the accumulator
    const int64_t per_task = static_cast<int64_t>(max_len) * (hq / hk) + D;
    if (a->scratch.size() < static_cast<size_t>(tasks * per_task))
      a->scratch.resize(static_cast<size_t>(tasks * per_task));
    if (a->offsets.size() < static_cast<size_t>(tasks * max_len))
      a->offsets.resize(static_cast<size_t>(tasks * max_len));
    AttendJobs j{a,     kp,           vp,           static_cast<const float*>(q->data),
                 static_cast<float*>(out->data), a->scratch.data(), a->offsets.data(), row,
                 q->strides[0], q->strides[1], units, slices, tasks, per_task, max_len, scale};
    if (pool) {
      auto task = [](void* user, int64_t c) { attend_task(*static_cast<const AttendJobs*>(user), c); };
      const SableStatus st = a->ops->parallel_for(ctx, tasks, task, &j);
      if (st != SABLE_OK) fail(st, "the host's parallel_for failed");
    } else {
      attend_task(j, 0);
    }
    return SABLE_OK;
  }
  SABLE_CATCH(a->host, a->handle)
}

const SableAttentionApi kApi = {sizeof(SableAttentionApi), 0, &probe, &supports_head_dim, &create,
                                &destroy, &plan, &run};

}  // namespace

SABLE_EXPORT_PLUGIN("cpu", "0.1.0", SABLE_PLUGIN_ATTENTION, &kApi,
                    "reference paged attention on the CPU (fp32, any head dim, GQA/MQA, sliding window)")
