// The statistics kernel of CudaSampler (see cuda_sampler.h and sample_kernel.h): penalties, bias
// and masks applied to a row, its log-softmax statistics and top-n log-probabilities over the
// row's split blocks, greedy rows sampled; the others are cut and drawn by cut_kernels.cu.
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "core/sampling/cuda/sample_kernel.h"
#include "core/sampling/cuda/split_row.cuh"
#include "sable/cuda/launch.cuh"

namespace sable::sampling {
namespace {

constexpr int kThreads = 1024;
// A row is split over blocks when it is long and the rows are few: each split at least
// kSplitMinLogits logits, about kSplitBlocks blocks in all (2 a SM of an H100/H200).
constexpr int64_t kSplitMinLogits = 8192;
constexpr int64_t kSplitBlocks = 264;

// Max value and its lowest index over the block.
__device__ void block_argmax(float& v, int& i, float* shv, int* shi) {
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) { shv[threadIdx.x >> 5] = v; shi[threadIdx.x >> 5] = i; }
  __syncthreads();
  if (threadIdx.x < 32) {
    v = shv[threadIdx.x];
    i = shi[threadIdx.x];
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, v, o);
      const int oi = __shfl_xor_sync(0xffffffffu, i, o);
      if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
  }
  if (threadIdx.x == 0) { shv[0] = v; shi[0] = i; }
  __syncthreads();
  v = shv[0];
  i = shi[0];
}

// The next entry after (pv, pi) in the order by value descending, index ascending: the max over
// get(k, value, index) for k in [0, n) of the entries strictly after it, reduced over the block
// (every thread gets it; -inf at INT_MAX when none is left). Top-n log-probabilities take n of
// these, each O(n) with no list of the ones already taken.
template <class Get>
__device__ void block_next_top(Get get, int64_t n, float pv, int pi, float& v, int& vi, float* shv,
                               int* shi) {
  v = -INFINITY;
  vi = INT_MAX;
  for (int64_t k = threadIdx.x; k < n; k += kThreads) {
    float x;
    int i;
    get(k, x, i);
    const bool after = x < pv || (x == pv && i > pi);
    if (after && (x > v || (x == v && i < vi))) {
      v = x;
      vi = i;
    }
  }
  block_argmax(v, vi, shv, shi);
}

// A thread's or a block's log-softmax statistics of a row: the max, its lowest index, and the sum
// of exp(x - max) over the elements seen.
struct RowStats {
  float mx = -INFINITY;
  int mi = INT_MAX;
  float sum = 0.0f;
  __device__ void add(float x, int i) {  // indices arrive in increasing order per thread
    if (x > mx) {
      sum = sum * __expf(mx - x) + 1.0f;  // mx = -inf: the old sum is 0
      mx = x;
      mi = i;
    } else if (x != -INFINITY) {
      sum += __expf(x - mx);
    }
  }
  __device__ void merge(const RowStats& o) {
    if (o.mx == -INFINITY) return;
    if (mx == -INFINITY) {
      *this = o;
      return;
    }
    const float m = fmaxf(mx, o.mx);
    sum = sum * __expf(mx - m) + o.sum * __expf(o.mx - m);
    mi = o.mx > mx || (o.mx == mx && o.mi < mi) ? o.mi : mi;
    mx = m;
  }
  __device__ void shfl_merge(int offset) {
    RowStats o;
    o.mx = __shfl_xor_sync(0xffffffffu, mx, offset);
    o.mi = __shfl_xor_sync(0xffffffffu, mi, offset);
    o.sum = __shfl_xor_sync(0xffffffffu, sum, offset);
    merge(o);
  }
};

// One pass over the slice [lo, hi) of the row (lo a multiple of 4; 16-byte loads where the row
// allows) for the max, its lowest index and the sum of exponentials, reduced over the block; every
// thread gets the result. Two passes (argmax, then the sum) read the vocabulary twice from one SM:
// ~20 us of a batch-1 step at 150k. kMasked: `mask` reads masked-out logits as -inf, the same
// statistics as after writing -inf over them, without that write pass; 4 logits masked together
// are not loaded at all.
template <bool kMasked>
__device__ RowStats block_row_stats(const float* row, int64_t lo, int64_t hi, const uint32_t* mask,
                                    float* shv, int* shi, float* shs) {
  RowStats st;
  const int tid = threadIdx.x;
  int64_t i0 = lo;
  if ((reinterpret_cast<uintptr_t>(row) & 15) == 0) {
    const int64_t n4 = (hi - lo) / 4;
    const float4* r4 = reinterpret_cast<const float4*>(row + lo);
    for (int64_t j = tid; j < n4; j += kThreads) {
      const int i = static_cast<int>(lo + j * 4);
      // The 4 bits of logits i..i+3 (i is a multiple of 4: one word holds them).
      const uint32_t bits = kMasked ? (mask[i >> 5] >> (i & 31)) & 0xFu : 0xFu;
      if (bits == 0) continue;  // add(-inf) changes nothing
      const float4 v = r4[j];
      st.add(bits & 1u ? v.x : -INFINITY, i);
      st.add(bits & 2u ? v.y : -INFINITY, i + 1);
      st.add(bits & 4u ? v.z : -INFINITY, i + 2);
      st.add(bits & 8u ? v.w : -INFINITY, i + 3);
    }
    i0 = lo + n4 * 4;
  }
  for (int64_t i = i0 + tid; i < hi; i += kThreads) {
    const bool allowed = !kMasked || ((mask[i >> 5] >> (i & 31)) & 1u);
    st.add(allowed ? row[i] : -INFINITY, static_cast<int>(i));
  }
  for (int o = 16; o > 0; o >>= 1) st.shfl_merge(o);
  __syncthreads();
  if ((tid & 31) == 0) {
    shv[tid >> 5] = st.mx;
    shi[tid >> 5] = st.mi;
    shs[tid >> 5] = st.sum;
  }
  __syncthreads();
  if (tid < 32) {
    st.mx = shv[tid];
    st.mi = shi[tid];
    st.sum = shs[tid];
    for (int o = 16; o > 0; o >>= 1) st.shfl_merge(o);
    if (tid == 0) {
      shv[0] = st.mx;
      shi[0] = st.mi;
      shs[0] = st.sum;
    }
  }
  __syncthreads();
  st.mx = shv[0];
  st.mi = shi[0];
  st.sum = shs[0];
  __syncthreads();  // the shared slots are reused by the next reduction
  return st;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(float* logits, int64_t ld, int64_t vocab, const SampleRowParams* params,
                  const int32_t* pen_tok, const int32_t* pen_cnt, const int32_t* bias_ids,
                  const float* bias_vals, const uint32_t* masks, const int32_t* ids, float* ids_lp,
                  SampleRowOut* out, SampleSplitPart* parts, SampleTopPart* top_parts,
                  uint32_t* tickets, SampleRowCut* cuts) {
  sable::cuda::wait_for_predecessor();
  sable::cuda::allow_dependents();
  __shared__ float shv[32];
  __shared__ int shi[32];
  const SampleRowParams p = params[blockIdx.x];
  float* row = logits + p.row * ld;
  const int tid = threadIdx.x;
  // This block's slice of the row: split blockIdx.y of gridDim.y, a multiple of 128 logits long.
  const int splits = static_cast<int>(gridDim.y);
  const int64_t slice = split_slice(vocab, splits);
  const int64_t lo = min(vocab, blockIdx.y * slice), hi = min(vocab, lo + slice);
  auto mine = [&](int64_t t) { return t >= lo && t < hi; };

  for (int j = tid; j < p.bias_len; j += kThreads) {
    const int t = bias_ids[p.bias_begin + j];
    if (mine(t)) row[t] += bias_vals[p.bias_begin + j];
  }
  __syncthreads();
  for (int j = tid; j < p.pen_len; j += kThreads) {
    const int t = pen_tok[p.pen_begin + j];
    if (!mine(t)) continue;
    float l = row[t];
    if (p.rep != 1.0f) l = l > 0 ? l / p.rep : l * p.rep;
    const int cnt = pen_cnt[p.pen_begin + j];  // generated occurrences
    row[t] = cnt > 0 ? l - (p.freq * cnt + p.pres) : l;
  }
  __syncthreads();
  const bool greedy_row = p.temperature <= 1e-6f || p.top_k == 1;
  // A greedy row that reports no other log-probability reads its logits in the row statistics
  // only: the grammar mask is applied there (no pass writing -inf over every masked logit, ~all of
  // a 128k row at a JSON key). Other rows read masked logits again: they get them written.
  const uint32_t* stats_mask = nullptr;
  if (p.mask_begin >= 0) {
    const uint32_t* m = masks + p.mask_begin;
    if (greedy_row && p.top_n == 0 && p.ids_len == 0) {
      stats_mask = m;
    } else {
      for (int64_t i = lo + tid; i < hi; i += kThreads)
        if (!((m[i >> 5] >> (i & 31)) & 1u)) row[i] = -INFINITY;
      __syncthreads();
    }
  }
  // Log-softmax statistics of the processed logits: this slice's, then (split rows) every
  // slice's, merged by the row's last block to finish, which goes on alone.
  __shared__ float shs[32];
  RowStats stats = stats_mask ? block_row_stats<true>(row, lo, hi, stats_mask, shv, shi, shs)
                              : block_row_stats<false>(row, lo, hi, nullptr, shv, shi, shs);
  // Top-n log-probabilities: a split's own first n in the order, merged by the last block.
  auto slice_at = [&](int64_t k, float& x, int& i) {
    i = static_cast<int>(lo + k);
    x = row[i];
  };
  if (splits > 1) {
    SampleTopPart* tops =
        top_parts + (blockIdx.x * kMaxSampleSplits + blockIdx.y) * kMaxTopLogprobs;
    float pv = INFINITY, v;
    int pi = -1, vi;
    for (int n = 0; n < p.top_n; ++n) {
      block_next_top(slice_at, hi - lo, pv, pi, v, vi, shv, shi);
      if (tid == 0) tops[n] = SampleTopPart{v, vi};
      pv = v;
      pi = vi;
    }
    if (tid == 0) {
      SampleSplitPart& q = parts[blockIdx.x * splits + blockIdx.y];
      q.mx = stats.mx;
      q.sum = stats.sum;
      q.mi = stats.mi;
    }
    if (!last_of_row(tickets)) return;  // the partials and the slices' logits seen after it
    stats = RowStats{};
    for (int k = 0; k < splits; ++k) {  // the same order in every thread: the same result
      const SampleSplitPart* q = parts + blockIdx.x * splits + k;
      RowStats o;
      o.mx = __ldcg(&q->mx);  // past L1: written by other SMs
      o.sum = __ldcg(&q->sum);
      o.mi = __ldcg(&q->mi);
      stats.merge(o);
    }
  }
  const float mx = stats.mx;
  const int mi = stats.mi;
  const float lse = mx == -INFINITY ? 0.0f : mx + logf(stats.sum);

  const int token = mi == INT_MAX ? 0 : mi;
  // A sampled row is left to the cut kernels (cut_kernels.cu), with its statistics.
  const bool greedy = greedy_row || mx == -INFINITY;
  if (tid == 0) {
    SampleRowCut& c = cuts[blockIdx.x];
    c.mx = mx;
    c.lse = lse;
    c.mi = token;
    c.deferred = greedy ? 0 : 1;
    c.blo = kCutBuckets;
    c.bhi = -1;
    out[blockIdx.x].token = token;
    // Nothing allowed (mx = -inf): token 0, whose logit the written mask would have made -inf.
    out[blockIdx.x].logprob = stats_mask && mx == -INFINITY ? -INFINITY : row[token] - lse;
  }
  for (int j = tid; j < p.ids_len; j += kThreads) ids_lp[p.ids_begin + j] = row[ids[p.ids_begin + j]] - lse;
  // Top-n log-probabilities: of the splits' first n (or of the row, unsplit), the first n.
  if (p.top_n > 0) {
    __shared__ float top_v[kMaxSampleSplits * kMaxTopLogprobs];
    __shared__ int top_i[kMaxSampleSplits * kMaxTopLogprobs];
    const int n_all = splits > 1 ? splits * p.top_n : 0;
    for (int k = tid; k < n_all; k += kThreads) {
      const SampleTopPart* t =
          top_parts + (blockIdx.x * kMaxSampleSplits + k / p.top_n) * kMaxTopLogprobs + k % p.top_n;
      top_v[k] = __ldcg(&t->value);
      top_i[k] = __ldcg(&t->index);
    }
    __syncthreads();
    auto merged_at = [&](int64_t k, float& x, int& i) {
      x = top_v[k];
      i = top_i[k];
    };
    auto row_at = [&](int64_t k, float& x, int& i) {
      i = static_cast<int>(k);
      x = row[k];
    };
    float pv = INFINITY, v;
    int pi = -1, vi;
    for (int n = 0; n < p.top_n; ++n) {
      if (splits > 1)
        block_next_top(merged_at, n_all, pv, pi, v, vi, shv, shi);
      else
        block_next_top(row_at, vocab, pv, pi, v, vi, shv, shi);
      if (tid == 0) {
        out[blockIdx.x].top_ids[n] = vi == INT_MAX ? 0 : vi;
        out[blockIdx.x].top_lp[n] = v - lse;
      }
      pv = v;
      pi = vi;
    }
  }
}

}  // namespace

int sample_splits(int64_t vocab, int64_t rows) {
  static const int64_t env = [] {  // SABLE_SAMPLE_SPLITS: a fixed count (1: one block a row; A/B)
    const char* v = std::getenv("SABLE_SAMPLE_SPLITS");
    return v ? std::atoll(v) : 0;
  }();
  if (rows > kMaxSplitRows) return 1;
  int64_t s =
      env > 0 ? env : std::min(vocab / kSplitMinLogits, kSplitBlocks / std::max<int64_t>(rows, 1));
  s = std::min<int64_t>(s, (vocab + 127) / 128);  // every split at least one 128-logit step
  return static_cast<int>(std::clamp<int64_t>(s, 1, kMaxSampleSplits));
}

void launch_sample_kernel(float* logits, int64_t ld, int64_t vocab, int64_t rows,
                          const SampleRowParams* params, const int32_t* pen_tok,
                          const int32_t* pen_cnt, const int32_t* bias_ids, const float* bias_vals,
                          const uint32_t* masks, const int32_t* ids, float* ids_lp,
                          SampleRowOut* out, int splits, SampleSplitPart* parts,
                          SampleTopPart* top_parts, uint32_t* tickets, SampleRowCut* cuts,
                          void* stream) {
  // A launch error is left in the runtime's last-error state; the caller checks cudaGetLastError.
  sable::cuda::launch(
      sample_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(splits)), kThreads, 0,
      static_cast<cudaStream_t>(stream), logits, ld, vocab, params, pen_tok, pen_cnt, bias_ids,
      bias_vals, masks, ids, ids_lp, out, parts, top_parts, tickets, cuts);
}

}  // namespace sable::sampling
