// What a sampled token does to its request: the grammar advances over it, jump-forward appends
// the tokens of text the grammar forces next, each output token is checked against the stop
// conditions, and the output is streamed every stream_interval steps.
//
// Jump-forward keeps three states in step. The grammar matcher replaces the sampled token by the
// tokenizer's encoding of its bytes plus the forced text (GrammarMatcher::jump_forward), so the
// boundary merges canonically; the sampled token has no KV yet, so nothing is rolled back in the
// pages or the radix tree: the next forward computes the KV of every appended token as one
// extend (Active::tokens_to_run) and samples after the last. Tokens cut off by jump_cap are
// rolled back in the matcher. The text the forced tokens spell goes through the decoder like any
// output, so stop strings, max_new_tokens and the usage counts see every token. Forced tokens are
// not sampled: their log-probabilities are null (SGLang recomputes them in its extend).
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "core/scheduler/scheduler_impl.h"

namespace sable::scheduler {
namespace {

constexpr float kNoLogprob = std::numeric_limits<float>::quiet_NaN();  // reported as null

}  // namespace

std::vector<int32_t> Scheduler::Impl::jump_forward(Active& a, int32_t t) {
  if (opts.disable_jump_forward || !a.req.grammar) return {};
  // An extend's forward reports the hidden state of its last token only: a request that wants one
  // per output token decodes forced text token by token.
  if (a.req.return_hidden_states) return {};
  const auto& p = a.req.params;
  const bool stop_id = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), t) !=
                           p.stop_token_ids.end() ||
                       std::find(a.req.eos_ids.begin(), a.req.eos_ids.end(), t) != a.req.eos_ids.end();
  // Nothing follows a stop token or the last token the request may produce.
  if (stop_id || a.num_output() + 1 >= a.max_new_tokens(opts.context_length)) return {};
  std::vector<int32_t> ids = a.req.grammar->jump_forward(t);
  // Where decode steps replay graphs, a jump makes the next step an eager extend for the whole
  // batch; it pays for that only when its forced tokens are many against the batch's rows
  // (bench/NOTES.md v10: at 32 rows, jumps of a few tokens cost 2 % of the throughput). A declined
  // jump keeps its first token (the sampled token, or its merge with the forced text) and the mask
  // forces the rest one step at a time.
  size_t keep = std::min(ids.size(), static_cast<size_t>(jump_cap));
  if (keep > 1 && backend.replays_decode_graphs() &&
      static_cast<double>(keep - 1) < kJumpCostPerRow * static_cast<double>(running.size()))
    keep = 1;
  if (ids.size() > keep) {
    a.req.grammar->rollback(static_cast<int32_t>(ids.size() - keep));
    ids.resize(keep);
  }
  return ids;
}

Scheduler::Impl::GrammarStep Scheduler::Impl::grammar_step(Active& a, int32_t t) {
  GrammarStep g;
  if (!a.req.grammar) return g;
  g.accepted = a.req.grammar->accept_token(t);
  if (g.accepted) g.jump = jump_forward(a, t);
  return g;
}

void Scheduler::Impl::process_sample(Active& a, const SableSampleResult& res, GrammarStep grammar,
                                     const std::vector<int32_t>& top_ids,
                                     const std::vector<float>& top_lps,
                                     const std::vector<float>& ids_lps) {
  const int32_t t = res.token;
  if (!grammar.accepted) {  // the mask should have prevented it
    finish(a, FinishReason::abort(fmt::format("the grammar rejected sampled token {}", t), 500), true);
    return;
  }
  const auto now = Clock::now();
  if (!a.has_first_token) {
    a.has_first_token = true;
    counters.ttft_sum += std::chrono::duration<double>(now - a.req.created).count();
    counters.ttft_count += 1;
  } else {
    counters.itl_sum += std::chrono::duration<double>(now - a.last_token_time).count();
    counters.itl_count += 1;
  }
  a.last_token_time = now;

  std::vector<int32_t> emitted = std::move(grammar.jump);
  if (emitted.empty()) emitted.push_back(t);
  const auto& lo = a.req.logprobs;
  for (size_t i = 0; i < emitted.size(); ++i) {
    // Every token but the one standing for the sampled token skipped a decode step.
    if (i > 0) counters.jump_forward_tokens += 1;
    std::optional<PositionLogprobs> lp;
    if (lo.return_logprob) {
      // The sampled token has the sampler's log-probabilities; a forced token (or one the
      // boundary merge put in the sampled token's place) has none: null, as for the first prompt
      // token.
      lp.emplace();
      if (i == 0 && emitted[0] == t) {
        lp->chosen = {res.logprob, t};
        for (size_t k = 0; k < top_ids.size(); ++k) lp->top.push_back({top_lps[k], top_ids[k]});
        for (size_t k = 0; k < lo.token_ids_logprob.size(); ++k)
          lp->token_ids.push_back({ids_lps[k], lo.token_ids_logprob[k]});
      } else {
        lp->chosen = {kNoLogprob, emitted[i]};
        for (int32_t id : lo.token_ids_logprob) lp->token_ids.push_back({kNoLogprob, id});
      }
    }
    if (emit_token(a, emitted[i], lp ? &*lp : nullptr)) return;
  }
  a.pending_steps += 1;
  const int32_t interval = a.req.params.stream_interval.value_or(opts.stream_interval);
  if (a.pending_steps >= interval) flush_pending(a);
}

bool Scheduler::Impl::emit_token(Active& a, int32_t t, PositionLogprobs* logprobs) {
  a.append_token(t);
  a.pending.token_ids.push_back(t);
  if (logprobs) a.pending.output_logprobs.push_back(std::move(*logprobs));
  counters.generation_tokens += 1;

  // Stop conditions, in SGLang's order: length, then stop/EOS tokens, then stop strings.
  const auto& p = a.req.params;
  const int64_t out = a.num_output();
  std::optional<std::string> matched;
  if (a.req.decoder) a.pending.text += a.req.decoder->push(t, &matched);
  std::optional<FinishReason> fin;
  if (p.max_new_tokens && out >= *p.max_new_tokens) {
    fin = FinishReason::length_reached(out);
  } else if (out >= p.min_new_tokens) {
    const bool stop_id = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), t) !=
                         p.stop_token_ids.end();
    const bool eos = !p.ignore_eos &&
                     std::find(a.req.eos_ids.begin(), a.req.eos_ids.end(), t) != a.req.eos_ids.end();
    if (stop_id || eos) {
      fin = FinishReason::stop_token(t);
    } else if (matched) {
      fin = FinishReason::stop_string(*matched);
    }
  }
  if (!fin && static_cast<int64_t>(a.tokens.size()) >= opts.context_length) {
    fin = FinishReason::length_reached(out);
  }
  if (!fin) return false;
  finish(a, std::move(*fin), /*insert_into_cache=*/true);
  return true;
}

}  // namespace sable::scheduler
