// Host side of CudaSampler: stages per-row parameters in pinned memory, launches the kernel,
// brings back only tokens and log-probabilities.
//
// The staged inputs (a grammar mask is 16 KB a row at a 128k vocabulary: 512 KB at batch 32) go
// up on a copy stream of the sampler's own, so they cross while the forward that produces the
// logits still runs, rather than queued behind it on the logits' stream; the kernel waits for them
// by an event. The next call rewrites the pinned buffers only after this one synchronised the
// logits' stream, which had waited for that event: the copies are done by then.
#include "core/sampling/cuda/cuda_sampler.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/ops/context.h"
#include "core/sampling/cuda/sample_kernel.h"
#include "core/sampling/row_logprobs.h"
#include "core/sampling/sampler.h"

namespace sable::sampling {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("cuda sampler: ") + what + ": " + cudaGetErrorString(e));
}

template <class T>
struct Staged {  // a growable pinned host + device pair
  T* host = nullptr;
  T* dev = nullptr;
  size_t cap = 0;
  void reserve(size_t n) {
    if (n <= cap) return;
    if (host) cudaFreeHost(host);
    if (dev) cudaFree(dev);
    cap = std::max<size_t>(n, 2 * cap);
    check(cudaMallocHost(&host, cap * sizeof(T)), "cudaMallocHost");
    check(cudaMalloc(&dev, cap * sizeof(T)), "cudaMalloc");
  }
  void up(size_t n, cudaStream_t s) {
    if (n) check(cudaMemcpyAsync(dev, host, n * sizeof(T), cudaMemcpyHostToDevice, s), "upload");
  }
  ~Staged() {
    if (host) cudaFreeHost(host);
    if (dev) cudaFree(dev);
  }
};

}  // namespace

// The copy stream and the event the kernel waits for, on the device that was current when they
// were made (the device of every buffer here).
struct CopyStream {
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  int device = -1;
  // The stream of the current device, made on first use (again if the device changed).
  cudaStream_t get() {
    int current = 0;
    check(cudaGetDevice(&current), "cudaGetDevice");
    if (stream != nullptr && device == current) return stream;
    release();
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    device = current;
    return stream;
  }
  void release() {
    if (done) cudaEventDestroy(done);
    if (stream) cudaStreamDestroy(stream);
    done = nullptr;
    stream = nullptr;
  }
  ~CopyStream() { release(); }
};

// The split statistics' partials and tickets (sample_kernel.h), zeroed once: every launch leaves
// the tickets at zero again.
struct SplitScratch {
  SampleSplitPart* parts = nullptr;
  SampleTopPart* top_parts = nullptr;
  uint32_t* tickets = nullptr;
  void ensure(cudaStream_t s) {
    if (parts != nullptr) return;
    check(cudaMalloc(&parts, kMaxSplitRows * kMaxSampleSplits * sizeof(SampleSplitPart)),
          "cudaMalloc");
    check(cudaMalloc(&top_parts,
                     kMaxSplitRows * kMaxSampleSplits * kMaxTopLogprobs * sizeof(SampleTopPart)),
          "cudaMalloc");
    check(cudaMalloc(&tickets, kMaxSplitRows * sizeof(uint32_t)), "cudaMalloc");
    check(cudaMemsetAsync(tickets, 0, kMaxSplitRows * sizeof(uint32_t), s), "cudaMemsetAsync");
  }
  ~SplitScratch() {
    if (parts) cudaFree(parts);
    if (top_parts) cudaFree(top_parts);
    if (tickets) cudaFree(tickets);
  }
};

// A device array of the cut kernels' scratch, grown to the rows of a call (zeroed when it grows,
// for the arrays the kernels leave zero). Growing frees the old one: every call synchronised its
// stream before returning, so no launch still uses it.
template <class T>
struct DeviceArray {
  T* ptr = nullptr;
  size_t cap = 0;
  void ensure(size_t n, bool zero, cudaStream_t s) {
    if (n <= cap) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    cap = 0;
    check(cudaMalloc(&ptr, n * sizeof(T)), "cudaMalloc");
    cap = n;
    if (zero) check(cudaMemsetAsync(ptr, 0, n * sizeof(T), s), "cudaMemsetAsync");
  }
  ~DeviceArray() {
    if (ptr) cudaFree(ptr);
  }
};

struct CutScratch {
  DeviceArray<SampleRowCut> cuts;
  DeviceArray<uint32_t> hist_count, cand_count;
  DeviceArray<unsigned long long> hist_mass;
  DeviceArray<int32_t> cand_idx;
  DeviceArray<float> cand_q;
  DeviceArray<SampleCutPart> parts;
  // The kernels' view for `rows` rows (the candidate lists only where some row is sampled, the
  // histograms only where rows are split).
  SampleCutScratch view(size_t rows, int64_t vocab, int splits, bool sampled, uint32_t* tickets,
                        cudaStream_t s) {
    cuts.ensure(rows, false, s);
    SampleCutScratch v;
    v.cuts = cuts.ptr;
    v.tickets = tickets;
    if (!sampled) return v;
    v.cand_cap = std::min<int64_t>(vocab, kCutCandidates);
    cand_count.ensure(rows, true, s);
    cand_idx.ensure(rows * v.cand_cap, false, s);
    cand_q.ensure(rows * v.cand_cap, false, s);
    if (splits > 1) {
      hist_count.ensure(rows * kCutBuckets, true, s);
      hist_mass.ensure(rows * kCutBuckets, true, s);
      parts.ensure(kMaxSplitRows * kMaxSampleSplits, false, s);
    }
    v.hist_count = hist_count.ptr;
    v.hist_mass = hist_mass.ptr;
    v.cand_idx = cand_idx.ptr;
    v.cand_q = cand_q.ptr;
    v.cand_count = cand_count.ptr;
    v.parts = parts.ptr;
    return v;
  }
};

struct CudaSampler::Impl {
  SplitScratch split;
  CutScratch cut;
  Staged<SampleRowParams> params;
  Staged<int32_t> pen_tok, pen_cnt, bias_ids, ids;
  Staged<float> bias_vals, ids_lp;
  Staged<uint32_t> masks;
  Staged<SampleRowOut> out;
  std::unordered_map<int32_t, int32_t> counts;
  std::vector<float> host_row;  // a row whose top-n is made on the host
  CopyStream copy;  // declared last: destroyed first, before the buffers its copies use
};

CudaSampler::CudaSampler() : impl_(std::make_unique<Impl>()) {}
CudaSampler::~CudaSampler() = default;

void CudaSampler::sample(float* logits, int64_t ld, int64_t vocab,
                         std::span<const SableSamplingRow> rows,
                         std::span<SableSampleResult> results, void* stream,
                         std::span<const int64_t> row_index) {
  Impl& m = *impl_;
  const size_t b = rows.size();
  if (b == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  const int64_t words = (vocab + 31) / 32;
  size_t n_pen = 0, n_bias = 0, n_mask = 0, n_ids = 0;
  for (const auto& r : rows) {
    if (!(r.top_p > 0.0f && r.top_p <= 1.0f)) throw std::invalid_argument("sampler: top_p out of range");
    if (r.top_k == 0 || r.top_k < -1) throw std::invalid_argument("sampler: top_k must be -1 or >= 1");
    if (r.top_logprobs_num < 0) throw std::invalid_argument("sampler: top_logprobs_num below 0");
    n_pen += r.num_prev_tokens;
    n_bias += r.num_logit_bias;
    n_mask += r.grammar_mask ? words : 0;
    n_ids += r.num_token_ids_logprob;
  }
  m.params.reserve(b);
  m.pen_tok.reserve(n_pen + 1);
  m.pen_cnt.reserve(n_pen + 1);
  m.bias_ids.reserve(n_bias + 1);
  m.bias_vals.reserve(n_bias + 1);
  m.masks.reserve(n_mask + 1);
  m.ids.reserve(n_ids + 1);
  m.ids_lp.reserve(n_ids + 1);
  m.out.reserve(b);
  size_t pen = 0, bias = 0, mask = 0, idn = 0;
  for (size_t i = 0; i < b; ++i) {
    const SableSamplingRow& r = rows[i];
    SampleRowParams& p = m.params.host[i];
    p = SampleRowParams{};
    p.temperature = r.temperature;
    p.top_p = r.top_p;
    p.min_p = r.min_p > 0 ? r.min_p : 0.0f;
    p.rep = r.repetition_penalty;
    p.freq = r.frequency_penalty;
    p.pres = r.presence_penalty;
    p.top_k = r.top_k;
    p.top_n = std::min(r.top_logprobs_num, kMaxTopLogprobs);  // more: on the host, below
    p.u = seeded_uniform(r.seed, r.step);
    p.row = row_index.empty() ? static_cast<int64_t>(i) : row_index[i];
    p.pen_begin = static_cast<int32_t>(pen);
    const bool penalties = r.repetition_penalty != 1.0f || r.frequency_penalty != 0.0f ||
                           r.presence_penalty != 0.0f;
    if (penalties && r.prev_tokens) {
      // count = generated occurrences (frequency/presence); prompt-only tokens get 0 and still
      // take the repetition penalty (see SableSamplingRow.num_prompt_tokens).
      const int32_t prompt = SABLE_HAS(&r, num_prompt_tokens)
                                 ? std::clamp(r.num_prompt_tokens, 0, r.num_prev_tokens)
                                 : 0;
      m.counts.clear();
      for (int32_t j = 0; j < r.num_prev_tokens; ++j)
        if (r.prev_tokens[j] >= 0 && r.prev_tokens[j] < vocab) m.counts[r.prev_tokens[j]] += j >= prompt;
      for (auto [t, c] : m.counts) {
        m.pen_tok.host[pen] = t;
        m.pen_cnt.host[pen++] = c;
      }
    }
    p.pen_len = static_cast<int32_t>(pen) - p.pen_begin;
    p.bias_begin = static_cast<int32_t>(bias);
    for (int32_t j = 0; j < r.num_logit_bias; ++j) {
      if (r.logit_bias_ids[j] < 0 || r.logit_bias_ids[j] >= vocab) continue;
      m.bias_ids.host[bias] = r.logit_bias_ids[j];
      m.bias_vals.host[bias++] = r.logit_bias_values[j];
    }
    p.bias_len = static_cast<int32_t>(bias) - p.bias_begin;
    p.mask_begin = r.grammar_mask ? static_cast<int32_t>(mask) : -1;
    if (r.grammar_mask) {
      std::copy_n(r.grammar_mask, words, m.masks.host + mask);
      mask += words;
    }
    p.ids_begin = static_cast<int32_t>(idn);
    for (int32_t j = 0; j < r.num_token_ids_logprob; ++j) {
      const int32_t t = r.token_ids_logprob[j];
      m.ids.host[idn++] = t >= 0 && t < vocab ? t : 0;
    }
    p.ids_len = static_cast<int32_t>(idn) - p.ids_begin;
  }
  // Under a stream capture the copies stay on `s` (a capture takes in no other stream's work).
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(s, &capture), "cudaStreamIsCapturing");
  const cudaStream_t up = capture == cudaStreamCaptureStatusNone ? m.copy.get() : s;
  m.params.up(b, up);
  m.pen_tok.up(pen, up);
  m.pen_cnt.up(pen, up);
  m.bias_ids.up(bias, up);
  m.bias_vals.up(bias, up);
  m.masks.up(mask, up);
  m.ids.up(idn, up);
  if (up != s) {
    check(cudaEventRecord(m.copy.done, up), "cudaEventRecord");
    check(cudaStreamWaitEvent(s, m.copy.done, 0), "cudaStreamWaitEvent");
  }
  const int splits = sample_splits(vocab, static_cast<int64_t>(b));
  if (splits > 1) m.split.ensure(s);
  // Sampled rows (not greedy) go on to the cut kernels; those with a top-k or top-p to the
  // histogram one first (the kernels' own tests of the same parameters).
  bool sampled = false, cut = false;
  for (const auto& r : rows) {
    if (r.temperature <= 1e-6f || r.top_k == 1) continue;
    sampled = true;
    cut |= (r.top_k > 0 && r.top_k < vocab) || r.top_p < 1.0f;
  }
  const SampleCutScratch scratch = m.cut.view(b, vocab, splits, sampled, m.split.tickets, s);
  launch_sample_kernel(logits, ld, vocab, static_cast<int64_t>(b), m.params.dev, m.pen_tok.dev,
                       m.pen_cnt.dev, m.bias_ids.dev, m.bias_vals.dev, m.masks.dev, m.ids.dev,
                       m.ids_lp.dev, m.out.dev, splits, m.split.parts, m.split.top_parts,
                       m.split.tickets, scratch.cuts, s);
  check(cudaGetLastError(), "launch");
  if (sampled) {
    launch_cut_kernels(logits, ld, vocab, static_cast<int64_t>(b), m.params.dev, m.out.dev, splits,
                       scratch, cut, s);
    check(cudaGetLastError(), "launch");
  }
  check(cudaMemcpyAsync(m.out.host, m.out.dev, b * sizeof(SampleRowOut), cudaMemcpyDeviceToHost, s), "download");
  if (idn) check(cudaMemcpyAsync(m.ids_lp.host, m.ids_lp.dev, idn * sizeof(float), cudaMemcpyDeviceToHost, s), "download");
  check(cudaStreamSynchronize(s), "synchronize");
  for (size_t i = 0; i < b; ++i) {
    const SampleRowOut& o = m.out.host[i];
    SableSampleResult& r = results[i];
    r.token = o.token;
    r.logprob = o.logprob;
    for (int j = 0; j < std::min(rows[i].top_logprobs_num, kMaxTopLogprobs); ++j) {
      if (r.top_ids) r.top_ids[j] = o.top_ids[j];
      if (r.top_logprobs) r.top_logprobs[j] = o.top_lp[j];
    }
    if (r.ids_logprobs)
      std::copy_n(m.ids_lp.host + m.params.host[i].ids_begin, rows[i].num_token_ids_logprob, r.ids_logprobs);
  }
  // A row asking for more top log-probabilities than the kernel keeps gets them from its processed
  // logits (penalties, bias and mask applied), brought back to the host: rare, and exact.
  for (size_t i = 0; i < b; ++i) {
    const int32_t n = std::min<int64_t>(rows[i].top_logprobs_num, vocab);
    if (n <= kMaxTopLogprobs || !results[i].top_ids || !results[i].top_logprobs) continue;
    m.host_row.resize(static_cast<size_t>(vocab));
    const float* src = logits + m.params.host[i].row * ld;
    check(cudaMemcpyAsync(m.host_row.data(), src, vocab * sizeof(float), cudaMemcpyDeviceToHost, s),
          "download");
    check(cudaStreamSynchronize(s), "synchronize");
    top_indices(m.host_row, {results[i].top_ids, static_cast<size_t>(n)});
    float lse = log_sum_exp(m.host_row, m.host_row[results[i].top_ids[0]]);
    if (lse == -INFINITY) lse = 0.0f;  // every logit masked: -inf each, as from the kernel
    for (int32_t j = 0; j < n; ++j)
      results[i].top_logprobs[j] = m.host_row[results[i].top_ids[j]] - lse;
  }
}

namespace {

SableStatus api_create(const SableHostApi*, SableHostHandle*, SableSampler** out) {
  try {
    *out = reinterpret_cast<SableSampler*>(new CudaSampler());
    return SABLE_OK;
  } catch (...) {
    return SABLE_ERR_DEVICE;
  }
}
void api_destroy(SableSampler* s) { delete reinterpret_cast<CudaSampler*>(s); }
SableStatus api_sample(SableSampler* s, SableOpsContext* ctx, const SableTensor* logits,
                       const SableSamplingRow* rows, SableSampleResult* results) {
  try {
    if (logits->device_type != SABLE_DEVICE_CUDA || logits->dtype != SABLE_DTYPE_F32 || logits->ndim != 2)
      return SABLE_ERR_INVALID_ARGUMENT;
    const int64_t b = logits->shape[0];
    reinterpret_cast<CudaSampler*>(s)->sample(static_cast<float*>(logits->data), logits->strides[0],
                                              logits->shape[1], {rows, static_cast<size_t>(b)},
                                              {results, static_cast<size_t>(b)}, ctx ? ctx->stream : nullptr);
    return SABLE_OK;
  } catch (const std::invalid_argument&) {
    return SABLE_ERR_INVALID_ARGUMENT;
  } catch (...) {
    return SABLE_ERR_DEVICE;
  }
}
const SableSamplerApi kApi = {sizeof(SableSamplerApi), 0, &api_create, &api_destroy, &api_sample};

}  // namespace

const SableSamplerApi* cuda_sampler_api() { return &kApi; }

}  // namespace sable::sampling
