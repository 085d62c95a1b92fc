// One scheduler step: make room for decodes (evict, then retract), admit prefill chunks under the
// token budget (scheduler_admit.cpp), run one mixed forward, cache the computed prefill prefixes,
// sample, and hand each sampled token to scheduler_output.cpp (grammar, jump-forward, stop
// conditions, streaming).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/sampling/row_logprobs.h"
#include "core/scheduler/scheduler_impl.h"
#include "core/util/log.h"

namespace sable::scheduler {
namespace {

constexpr int64_t kRetractDecodeSteps = 20;  // SGLANG_RETRACT_DECODE_STEPS
constexpr double kRatioDecaySteps = 600.0;   // SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS
constexpr int32_t kMaxDeferredPerStep = 128;  // bounds the admission scan of a long queue
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Sampled tokens' grammar steps (~1-2 us each) per thread taking part: waking a worker costs the
// scheduler thread a few of them.
constexpr size_t kGrammarRowsPerThread = 8;

// A prompt position's log-probabilities: the sampler's normalizer and top-n (row_logprobs.h), not a
// double exp and a partial sort of the vocabulary per position (a long prompt's rows each cost
// that on the scheduler thread).
PositionLogprobs position_logprobs(const float* row, int32_t vocab, int32_t token,
                                   const LogprobOptions& o) {
  const std::span<const float> values(row, static_cast<size_t>(vocab));
  const float lse = sampling::log_sum_exp(values, row[sampling::argmax(values)]);
  PositionLogprobs p;
  p.chosen = {row[token] - lse, token};
  if (o.top_logprobs_num > 0) {
    std::vector<int32_t> top(static_cast<size_t>(std::min(o.top_logprobs_num, vocab)));
    sampling::top_indices(values, top);
    for (const int32_t id : top) p.top.push_back({row[id] - lse, id});
  }
  for (int32_t id : o.token_ids_logprob) {
    p.token_ids.push_back({(id >= 0 && id < vocab) ? row[id] - lse : kNegInf, id});
  }
  return p;
}

}  // namespace

int32_t Scheduler::Impl::retract_for_decode(std::vector<Active*>& decode) {
  auto pages_needed = [&](int64_t steps) {
    int64_t need = 0;
    for (Active* a : decode) {
      // The next forward runs a's pending tokens; each later step one more.
      const int64_t len = static_cast<int64_t>(a->tokens.size()) - 1 + steps;
      need += std::max<int64_t>(0, pool.pages_for(len) - static_cast<int64_t>(a->pages.size()));
    }
    return need;
  };
  auto make_room = [&](int64_t need) {
    if (need > pool.num_free()) cache.evict(static_cast<int32_t>(need - pool.num_free()));
    return need <= pool.num_free();
  };
  if (make_room(pages_needed(1))) return 0;
  // Retract: fewest generated tokens first, among equals the longest prompt.
  int32_t retracted = 0;
  std::sort(decode.begin(), decode.end(), [](const Active* a, const Active* b) {
    if (a->num_output() != b->num_output()) return a->num_output() > b->num_output();
    return a->prompt_len < b->prompt_len;
  });
  while (decode.size() > 1 && !make_room(pages_needed(kRetractDecodeSteps))) {
    Active* victim = decode.back();
    decode.pop_back();
    const auto kv = victim->key().first(static_cast<size_t>(victim->kv_len));
    cache.release(kv, victim->pages, victim->num_cached_pages, victim->locked, /*insert=*/false);
    victim->pages.clear();
    victim->locked = nullptr;
    victim->num_cached_pages = 0;
    victim->kv_len = 0;
    victim->prefill_done = false;
    victim->retractions += 1;
    counters.num_retractions += 1;
    ++retracted;
    auto it = std::find_if(running.begin(), running.end(),
                           [&](const auto& p) { return p.get() == victim; });
    waiting.push_front(std::move(*it));
    running.erase(it);
  }
  if (!make_room(pages_needed(1))) {
    // Even one request alone does not fit: it can never finish.
    Active* last = decode.back();
    decode.pop_back();
    auto it = std::find_if(running.begin(), running.end(),
                           [&](const auto& p) { return p.get() == last; });
    finish(*last, FinishReason::abort("out of KV cache memory: the sequence no longer fits", 500),
           false);
    running.erase(it);
  }
  if (retracted > 0) {
    double generated = 0, wanted = 0;
    for (Active* a : decode) {
      generated += static_cast<double>(a->num_output());
      wanted += static_cast<double>(a->max_new_tokens(opts.context_length));
    }
    new_token_ratio = std::min(
        1.0, (generated + kRetractDecodeSteps * static_cast<double>(decode.size())) / (wanted + 1));
    log::info("scheduler: KV cache full, retracted {} request(s); new_token_ratio {:.3f}", retracted,
              new_token_ratio);
  }
  return retracted;
}


void Scheduler::Impl::collect_input_logprobs(Active& a, const float* rows, int64_t num_rows,
                                             int64_t first_pos, int32_t vocab) {
  const auto& o = a.req.logprobs;
  const int64_t from = std::max<int64_t>(o.logprob_start_len, 1);
  if (first_pos == 0 && o.logprob_start_len == 0) {
    PositionLogprobs none;  // the first prompt token has no log-probability (null)
    none.chosen = {std::numeric_limits<float>::quiet_NaN(), a.tokens[0]};
    a.pending.input_logprobs.push_back(std::move(none));
  }
  for (int64_t r = 0; r < num_rows; ++r) {
    const int64_t target = first_pos + r + 1;  // the prompt token this row predicts
    if (target < from || target >= a.prompt_len) continue;
    a.pending.input_logprobs.push_back(
        position_logprobs(rows + r * vocab, vocab, a.tokens[static_cast<size_t>(target)], o));
  }
}

void Scheduler::Impl::collect_hidden_states(Active& a, const ModelBackend::Logits& out,
                                            int64_t first_row, int64_t rows, bool prefill) {
  const auto h = static_cast<size_t>(out.hidden_size);
  if (h == 0 || out.hidden.size() < static_cast<size_t>(first_row + rows) * h)
    throw std::logic_error("scheduler: the forward returned no hidden states for a request that "
                           "asked for them");
  HiddenStates hs;
  hs.prefill = prefill;
  hs.rows = static_cast<int32_t>(rows);
  hs.hidden_size = out.hidden_size;
  hs.values.assign(out.hidden.begin() + static_cast<std::ptrdiff_t>(first_row * h),
                   out.hidden.begin() + static_cast<std::ptrdiff_t>((first_row + rows) * h));
  a.pending.hidden_states.push_back(std::move(hs));
}

void Scheduler::Impl::step() {
  StepInfo info;
  // 1. Room for the pending tokens of every decoding request (one, or those a jump appended).
  std::vector<Active*> decode;
  for (auto& a : running) {
    if (a->prefill_done) decode.push_back(a.get());
  }
  if (!decode.empty()) info.num_retracted = retract_for_decode(decode);
  for (Active* a : decode) {
    const int64_t need = pool.pages_for(static_cast<int64_t>(a->tokens.size())) -
                         static_cast<int64_t>(a->pages.size());
    if (need > 0) {
      auto pages = pool.allocate(static_cast<int32_t>(need));
      if (!pages) throw std::logic_error("scheduler: decode pages vanished after retraction");
      a->pages.insert(a->pages.end(), pages->begin(), pages->end());
    }
  }
  // Keep decode in admission order (retraction sorted it) so batches are reproducible.
  decode.clear();
  for (auto& a : running) {
    if (a->prefill_done) decode.push_back(a.get());
  }

  // 2. Prefill chunks under the token budget: the chunked request first, then admissions.
  int32_t budget =
      opts.chunked_prefill_size > 0 ? opts.chunked_prefill_size : opts.max_prefill_tokens;
  for (const Active* a : decode) budget -= static_cast<int32_t>(a->tokens_to_run());
  std::vector<PrefillChunk> prefills;
  for (auto& a : running) {
    if (a->prefill_done || budget <= 0) continue;
    int32_t n = 0;
    if (admit(*a, budget, &n)) {
      prefills.push_back({a.get(), n});
      budget -= n;
    }
  }
  order_waiting();
  // Admission in policy order. A request whose uncached prefix is being computed by a chunk of
  // this batch keeps its place and waits one step, then reuses those pages from the cache.
  int32_t deferred = 0;
  // LoRA: the adapters of the running requests; a request of one more adapter waits while the
  // pool's slots are all taken.
  std::vector<int32_t> adapters;
  for (const auto& r : running)
    if (r->req.lora_id != 0 &&
        std::find(adapters.begin(), adapters.end(), r->req.lora_id) == adapters.end())
      adapters.push_back(r->req.lora_id);
  for (size_t i = 0; i < waiting.size() && budget > 0 &&
                     static_cast<int32_t>(running.size()) < opts.max_running_requests;) {
    Active& a = *waiting[i];
    const bool new_adapter = a.req.lora_id != 0 && std::find(adapters.begin(), adapters.end(),
                                                             a.req.lora_id) == adapters.end();
    if (new_adapter && opts.max_loras_per_batch > 0 &&
        static_cast<int32_t>(adapters.size()) >= opts.max_loras_per_batch) {
      ++i;
      continue;
    }
    if (defer_for_shared_prefix(a, prefills)) {
      if (++deferred >= kMaxDeferredPerStep) break;
      ++i;
      continue;
    }
    int32_t n = 0;
    if (!admit(a, budget, &n)) break;
    prefills.push_back({&a, n});
    budget -= n;
    if (new_adapter) adapters.push_back(a.req.lora_id);
    running.push_back(std::move(waiting[i]));
    waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (decode.empty() && prefills.empty()) {
    if (running.empty() && !waiting.empty()) {
      // Nothing runs and the head of the queue cannot be placed even in an empty pool.
      auto a = std::move(waiting.front());
      waiting.pop_front();
      finish(*a, FinishReason::abort("the request does not fit in the KV cache pool", 500), false);
    }
    return;
  }

  // 3. One forward over decodes and prefill chunks.
  std::vector<ModelBackend::Sequence> seqs;
  for (Active* a : decode) {
    seqs.push_back({std::span<const int32_t>(a->tokens).subspan(a->kv_len),
                    static_cast<int32_t>(a->kv_len), a->pages, false, a->req.lora_id,
                    a->req.return_hidden_states, a->req.images.get()});
  }
  for (const PrefillChunk& c : prefills) {
    // return_hidden_states needs every prompt position's row (SGLang reports them all).
    const bool hidden = c.a->req.return_hidden_states;
    seqs.push_back({std::span<const int32_t>(c.a->tokens).subspan(c.a->kv_len, c.n),
                    static_cast<int32_t>(c.a->kv_len), c.a->pages,
                    wants_input_logprobs(*c.a) || hidden, c.a->req.lora_id, hidden,
                    c.a->req.images.get()});
  }
  info.num_seqs = static_cast<int32_t>(seqs.size());
  info.num_decode = static_cast<int32_t>(decode.size());
  info.num_prefill = static_cast<int32_t>(prefills.size());
  for (const auto& s : seqs) info.num_tokens += static_cast<int32_t>(s.new_tokens.size());
  // Grammar masks of the constrained rows this step samples (decodes, and prefills that complete
  // their prompt) depend only on tokens already accepted: workers fill them while the model runs,
  // handed over after the launch when the forward returns before the device computes it.
  std::vector<Active*> constrained;
  for (Active* a : decode)
    if (a->req.grammar) constrained.push_back(a);
  for (const PrefillChunk& c : prefills)
    if (c.a->req.grammar && c.a->kv_len + c.n == static_cast<int64_t>(c.a->tokens.size()))
      constrained.push_back(c.a);
  const bool masks_after_launch = !constrained.empty() && backend.forward_returns_at_launch(seqs);
  const bool masks_before = !constrained.empty() && !masks_after_launch;
  auto start_masks = [&] {
    const size_t words = (static_cast<size_t>(opts.vocab_size) + 31) / 32;
    mask_workers.start(constrained.size(), [&constrained, words](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        Active* a = constrained[i];
        a->mask.assign(words, 0u);
        a->req.grammar->fill_bitmask(a->mask);
      }
    });
  };
  if (masks_before) start_masks();
  ModelBackend::Logits out;
  const auto forward_start = std::chrono::steady_clock::now();
  try {
    out = backend.forward(seqs);
  } catch (...) {
    if (masks_before) {  // the job reads `constrained`: let it end; the forward's error wins
      try {
        mask_workers.wait();
      } catch (...) {
      }
    }
    throw;
  }
  double model_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - forward_start).count();
  if (masks_after_launch) start_masks();  // host time (the counters' model time is the launch)
  if (!constrained.empty()) mask_workers.wait();  // rethrows a grammar engine failure
  const int32_t vocab = out.vocab;
  if (!constrained.empty() && vocab != opts.vocab_size)
    throw std::logic_error("scheduler: logits width differs from vocab_size (grammar masks)");

  // 4. Which rows get sampled: every decode, and prefills that completed their sequence.
  std::vector<std::pair<Active*, int64_t>> to_sample;  // (request, logits row)
  std::vector<Active*> prefill_only_done;               // max_new_tokens == 0
  int64_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int64_t rows = seqs[i].all_logits ? static_cast<int64_t>(seqs[i].new_tokens.size()) : 1;
    Active* a = i < decode.size() ? decode[i] : prefills[i - decode.size()].a;
    if (i >= decode.size() && seqs[i].all_logits && wants_input_logprobs(*a)) {
      collect_input_logprobs(*a, out.data.data() + row * vocab, rows, a->kv_len, vocab);
    }
    if (seqs[i].want_hidden) collect_hidden_states(*a, out, row, rows, i >= decode.size());
    a->kv_len += static_cast<int64_t>(seqs[i].new_tokens.size());
    if (!a->prefill_done && a->kv_len == static_cast<int64_t>(a->tokens.size())) {
      a->prefill_done = true;
      a->input_logprobs_done = true;
      if (a->max_new_tokens(opts.context_length) - a->num_output() <= 0 ||
          (a->req.params.max_new_tokens && *a->req.params.max_new_tokens == 0)) {
        prefill_only_done.push_back(a);
        row += rows;
        continue;
      }
    }
    if (a->prefill_done) to_sample.emplace_back(a, row + rows - 1);
    row += rows;
  }
  // The computed prefixes are now reusable by later admissions (even next step's).
  for (const PrefillChunk& c : prefills) cache_prefill_progress(*c.a);

  // 5. Sample.
  const size_t B = to_sample.size();
  // Host logits: the sampled rows gathered into one [B, vocab] block (the sampler edits them in
  // place), unless they are already the first B rows in order (a decode-only step): then the
  // forward's own buffer is sampled in place, without a copy of B x vocab floats.
  bool in_place = !out.on_device && out.data.size() >= B * static_cast<size_t>(vocab);
  for (size_t b = 0; b < B && in_place; ++b)
    in_place = to_sample[b].second == static_cast<int64_t>(b);
  std::vector<float> logits(out.on_device || in_place ? 0 : B * static_cast<size_t>(vocab));
  std::vector<int64_t> row_index(B);
  std::vector<SableSamplingRow> rows(B);
  std::vector<SableSampleResult> results(B);
  std::vector<std::vector<int32_t>> bias_ids(B), top_ids(B);
  std::vector<std::vector<float>> bias_vals(B), top_lps(B), ids_lps(B);
  for (size_t b = 0; b < B; ++b) {
    Active& a = *to_sample[b].first;
    row_index[b] = to_sample[b].second;
    if (!out.on_device && !in_place)
      std::copy_n(out.data.data() + to_sample[b].second * vocab, vocab, logits.data() + b * vocab);
    const auto& p = a.req.params;
    for (const auto& [id, v] : p.logit_bias) {
      bias_ids[b].push_back(id);
      bias_vals[b].push_back(v);
    }
    if (a.num_output() < p.min_new_tokens) {  // suppress EOS and stop tokens until the minimum
      for (int32_t id : p.stop_token_ids) bias_ids[b].push_back(id), bias_vals[b].push_back(kNegInf);
      if (!p.ignore_eos) {
        for (int32_t id : a.req.eos_ids) bias_ids[b].push_back(id), bias_vals[b].push_back(kNegInf);
      }
    }
    SableSamplingRow& r = rows[b];
    r = SableSamplingRow{};
    r.struct_size = sizeof(SableSamplingRow);
    r.temperature = static_cast<float>(p.temperature);
    r.top_p = static_cast<float>(p.top_p);
    r.top_k = p.top_k;
    r.min_p = static_cast<float>(p.min_p);
    r.frequency_penalty = static_cast<float>(p.frequency_penalty);
    r.presence_penalty = static_cast<float>(p.presence_penalty);
    r.repetition_penalty = static_cast<float>(p.repetition_penalty);
    r.seed = p.sampling_seed.value_or(a.req.seed);
    r.step = static_cast<uint64_t>(a.num_output());
    r.prev_tokens = a.tokens.data();
    r.num_prev_tokens = static_cast<int32_t>(a.tokens.size());
    r.num_prompt_tokens = static_cast<int32_t>(a.tokens.size() - a.num_output());
    r.num_logit_bias = static_cast<int32_t>(bias_ids[b].size());
    r.logit_bias_ids = bias_ids[b].data();
    r.logit_bias_values = bias_vals[b].data();
    const auto& lo = a.req.logprobs;
    r.want_logprob = lo.return_logprob ? 1 : 0;
    r.top_logprobs_num = lo.return_logprob ? lo.top_logprobs_num : 0;
    r.num_token_ids_logprob = lo.return_logprob ? static_cast<int32_t>(lo.token_ids_logprob.size()) : 0;
    r.token_ids_logprob = lo.token_ids_logprob.data();
    if (a.req.grammar) r.grammar_mask = a.mask.data();  // filled during the forward
    top_ids[b].resize(static_cast<size_t>(std::min(r.top_logprobs_num, vocab)));
    top_lps[b].resize(top_ids[b].size());
    ids_lps[b].resize(static_cast<size_t>(r.num_token_ids_logprob));
    results[b] = SableSampleResult{};
    results[b].struct_size = sizeof(SableSampleResult);
    results[b].top_ids = top_ids[b].data();
    results[b].top_logprobs = top_lps[b].data();
    results[b].ids_logprobs = ids_lps[b].data();
  }
  const auto sample_start = std::chrono::steady_clock::now();
  if (out.on_device) {
    if (B > 0) backend.sample_on_device(row_index, rows, results);
  } else {
    sampler.sample(in_place ? out.data.data() : logits.data(), vocab, rows, results, nullptr,
                   [this](int64_t n, const std::function<void(int64_t)>& fn) {
                     backend.parallel_rows(n, fn);
                   });
  }
  model_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sample_start).count();
  cycle_model_seconds = model_seconds;  // counted with the cycle's time (loop())
  ran_forward = true;

  counters.num_steps += 1;  // before the samples: a request finished below counts this step
  if (info.num_tokens > info.num_seqs) counters.extend_steps += 1;
  // 6. The grammars take their sampled tokens and say what they force next. This lies between the
  // device's sampling and the next launch, and each touches only its request: with
  // SABLE_GRAMMAR_SHARE=1 a large constrained batch shares its rows with the grammar workers, this
  // thread taking part from the start (an A/B switch: a worker's wake-up can take as long as the
  // rows' work, bench/NOTES.md "twelfth session").
  std::vector<GrammarStep> grammar(B);
  std::vector<size_t> constrained_rows;
  for (size_t b = 0; b < B; ++b)
    if (to_sample[b].first->req.grammar) constrained_rows.push_back(b);
  auto grammar_row = [&](size_t k) {
    const size_t b = constrained_rows[k];
    grammar[b] = grammar_step(*to_sample[b].first, results[b].token);
  };
  const size_t helpers = share_grammar_rows ? constrained_rows.size() / kGrammarRowsPerThread : 0;
  if (helpers > 1) {
    grammar_workers.share(constrained_rows.size(), helpers - 1, grammar_row);
  } else {
    for (size_t k = 0; k < constrained_rows.size(); ++k) grammar_row(k);
  }
  // 7. Append, check stops, stream; finished requests leave the running set.
  for (size_t b = 0; b < B; ++b) {
    process_sample(*to_sample[b].first, results[b], std::move(grammar[b]), top_ids[b], top_lps[b],
                   ids_lps[b]);
  }
  for (Active* a : prefill_only_done) finish(*a, FinishReason::length_reached(0), true);
  running.remove_if([](const std::unique_ptr<Active>& a) { return a->req.stream->finished(); });

  if (info.num_retracted == 0 && !decode.empty()) {
    new_token_ratio = std::max(min_ratio, new_token_ratio - (init_ratio - min_ratio) / kRatioDecaySteps);
  }
  counters.last_batch_size = info.num_seqs;
  counters.max_batch_size = std::max(counters.max_batch_size, info.num_seqs);
  std::function<void(const StepInfo&)> observer;
  {
    std::lock_guard<std::mutex> lock(mutex);
    observer = step_observer;
  }
  if (observer) observer(info);
}

}  // namespace sable::scheduler
