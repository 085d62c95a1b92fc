// Scheduler on a fake model whose logits are a hash of the sequence it reads back THROUGH ITS KV
// PAGES: a wrong page (shared when it should not be, overwritten, freed too early) changes the
// output. Checks continuous batching, radix reuse, eviction, retraction, chunked prefill, abort,
// stop conditions and logprobs against a naive reference generator.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "core/scheduler/scheduler.h"
#include "tests/unit/scheduler_fake_model.h"

using namespace sable::scheduler;
using namespace sable::scheduler::fake;
using sable::sampling::SamplingParams;

TEST(Scheduler, GreedyBatchMatchesReference) {
  FakeModel model(512, 1);
  model.hold = true;  // without it the first request may finish before the second is submitted
  Scheduler s(options(512), model);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 5; ++i) streams.push_back(submit(s, "r" + std::to_string(i), prompt(5 + i, i), 12));
  model.hold = false;
  for (int i = 0; i < 5; ++i) {
    Result r = collect(*streams[i]);
    EXPECT_EQ(r.ids, reference(prompt(5 + i, i), 12)) << i;
    EXPECT_EQ(r.finish.type, FinishReason::Type::kLength);
    EXPECT_EQ(r.finish.length, 12);
    EXPECT_EQ(r.last.completion_tokens, 12);
    EXPECT_EQ(r.last.prompt_tokens, 5 + i);
  }
  EXPECT_GE(s.stats().max_batch_size, 2);
}

TEST(Scheduler, RadixCacheReusesPrefixWithIdenticalOutput) {
  for (int32_t ps : {1, 4}) {
    FakeModel model(256, ps);
    Scheduler s(options(256, ps), model);
    auto base = prompt(20, 1);
    Result a = collect(*submit(s, "a", base, 8));
    auto second = base;
    second.resize(14);
    second.push_back(7);
    second.push_back(9);
    Result b = collect(*submit(s, "b", second, 8));
    EXPECT_EQ(a.ids, reference(base, 8));
    EXPECT_EQ(b.ids, reference(second, 8));
    EXPECT_EQ(b.last.cached_tokens, 14 / ps * ps) << "page size " << ps;
    EXPECT_GT(s.stats().cache_hit_rate, 0.0);
    // Same prompt again: everything but the last token (page-aligned) is cached.
    Result c = collect(*submit(s, "c", base, 8));
    EXPECT_EQ(c.ids, a.ids);
    EXPECT_EQ(c.last.cached_tokens, 19 / ps * ps);
    EXPECT_TRUE(s.flush_cache());
    EXPECT_EQ(s.stats().free_pages, 256);
  }
}

TEST(Scheduler, DisabledCacheAndTinyPoolEvictionKeepOutputs) {
  SchedulerOptions o = options(40);
  o.disable_radix_cache = true;
  FakeModel m1(40, 1);
  Scheduler off(o, m1);
  FakeModel m2(40, 1);
  Scheduler tiny(options(40), m2);  // every finished request pushes others out of the tree
  for (int i = 0; i < 6; ++i) {
    auto p = prompt(12, i % 3);
    Result x = collect(*submit(off, "x", p, 10));
    Result y = collect(*submit(tiny, "y", p, 10));
    EXPECT_EQ(x.ids, reference(p, 10));
    EXPECT_EQ(y.ids, x.ids);
    EXPECT_EQ(x.last.cached_tokens, 0);
  }
  EXPECT_TRUE(tiny.flush_cache());
  EXPECT_EQ(tiny.stats().free_pages, 40);
  // `off` publishes its stats at the end of the step that streamed the last token: wait for it.
  for (int i = 0; i < 200 && off.stats().free_pages != 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(off.stats().free_pages, 40);
}

TEST(Scheduler, ArrivalsJoinTheRunningBatch) {
  FakeModel model(512, 1);
  model.delay_ms = 2;
  // What the step observer touches is declared before the scheduler, so it outlives the thread: the
  // observer runs after the step's chunks were pushed (TSan saw it write into a freed vector).
  std::mutex mu;
  std::vector<StepInfo> steps;
  Scheduler s(options(512), model);
  s.set_step_observer([&](const StepInfo& i) {
    std::lock_guard<std::mutex> l(mu);
    steps.push_back(i);
  });
  auto a = submit(s, "a", prompt(6, 1), 40);
  auto first = a->next();  // A is decoding now
  ASSERT_TRUE(first.has_value());
  auto b = submit(s, "b", prompt(9, 2), 10);
  Result rb = collect(*b);
  Result ra = collect(*a);
  ra.ids.insert(ra.ids.begin(), first->token_ids.begin(), first->token_ids.end());
  EXPECT_EQ(ra.ids, reference(prompt(6, 1), 40));
  EXPECT_EQ(rb.ids, reference(prompt(9, 2), 10));
  std::lock_guard<std::mutex> l(mu);
  bool mixed = false, both_decode = false;
  for (const auto& i : steps) {
    mixed |= i.num_decode == 1 && i.num_prefill == 1;
    both_decode |= i.num_decode == 2;
  }
  EXPECT_TRUE(mixed) << "B's prefill shared a forward with A's decode";
  EXPECT_TRUE(both_decode);
  EXPECT_EQ(s.stats().max_batch_size, 2);
}

TEST(Scheduler, StepTimeSplitsIntoModelAndHostWork) {
  FakeModel model(512, 1);
  model.delay_ms = 3;  // a 3 ms "device" per forward
  Scheduler s(options(512), model);
  Result r = collect(*submit(s, "a", prompt(5, 3), 8));
  EXPECT_EQ(r.ids, reference(prompt(5, 3), 8));
  // The last cycle's time is published after its chunks went out: wait for it (bounded).
  SchedulerStats st = s.stats();
  for (int i = 0; i < 2000 && st.timed_cycles < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    st = s.stats();
  }
  ASSERT_EQ(st.timed_cycles, 8);  // one prefill (with the first token) and seven decode steps
  EXPECT_GE(st.model_time_sum, 8 * 0.003);
  EXPECT_GE(st.cycle_time_sum, st.model_time_sum);
  EXPECT_LT(st.cycle_time_sum, st.model_time_sum + 8 * 0.5);  // host work: far below 0.5 s a step
}

TEST(Scheduler, RetractionUnderPressureKeepsOutputsAndLeaksNothing) {
  for (int32_t ps : {1, 2}) {
    const int64_t pages = 60 / ps;  // 60 tokens for 4 x (8 + 20)
    SchedulerOptions o = options(pages, ps);
    o.init_new_token_ratio = 0.0;  // admit greedily so decoding runs out of pages
    FakeModel model(pages, ps);
    model.delay_ms = 1;
    model.hold = true;  // all four are queued before the first step
    Scheduler s(o, model);

    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 4; ++i) streams.push_back(submit(s, std::to_string(i), prompt(8, i), 20));
    model.hold = false;
    int64_t retractions = 0;
    for (int i = 0; i < 4; ++i) {
      Result r = collect(*streams[i]);
      EXPECT_EQ(r.ids, reference(prompt(8, i), 20)) << i;
      retractions += r.last.num_retractions;
    }
    EXPECT_GT(retractions, 0);
    EXPECT_GT(s.stats().num_retractions, 0);
    EXPECT_TRUE(s.flush_cache());
    EXPECT_EQ(s.stats().free_pages, pages);
  }
}

TEST(Scheduler, ChunkedPrefillGivesIdenticalOutputAndLogprobs) {
  SchedulerOptions o = options(512);
  o.chunked_prefill_size = 8;
  FakeModel model(512, 1);
  std::vector<StepInfo> steps;
  Scheduler s(o, model);
  s.set_step_observer([&](const StepInfo& i) { steps.push_back(i); });
  auto p = prompt(50, 3);
  SamplingParams params;
  Request r;
  r.rid = "long";
  r.input_ids = p;
  params.temperature = 0;
  params.max_new_tokens = 6;
  r.params = params;
  r.logprobs.return_logprob = true;
  r.logprobs.logprob_start_len = 0;
  r.logprobs.top_logprobs_num = 2;
  r.stream = std::make_shared<RequestStream>();
  auto stream = r.stream;
  s.submit(std::move(r));
  Result res = collect(*stream);
  EXPECT_EQ(res.ids, reference(p, 6));
  s.shutdown();  // the last step's observer may still run after the last chunk: join first
  int prefill_steps = 0;
  for (const auto& i : steps) {
    EXPECT_LE(i.num_tokens, 8);
    prefill_steps += i.num_prefill;
  }
  EXPECT_EQ(prefill_steps, 7);  // ceil(50 / 8)
  // Prompt log-probabilities: position 0 is null, then one per prompt token, from the raw logits.
  ASSERT_EQ(res.input_lp.size(), 50u);
  EXPECT_TRUE(std::isnan(res.input_lp[0].chosen.logprob));
  for (int i = 1; i < 50; ++i) {
    float l[kVocab];
    fake_logits(std::span<const int32_t>(p).first(i), l);
    float m = *std::max_element(l, l + kVocab);
    double sum = 0;
    for (float x : l) sum += std::exp(x - m);
    EXPECT_NEAR(res.input_lp[i].chosen.logprob, l[p[i]] - m - std::log(sum), 1e-4);
    EXPECT_EQ(res.input_lp[i].chosen.token, p[i]);
    ASSERT_EQ(res.input_lp[i].top.size(), 2u);
  }
  ASSERT_EQ(res.output_lp.size(), 6u);
  EXPECT_EQ(res.output_lp[0].top[0].token, res.ids[0]);  // greedy: the chosen is the best
}

TEST(Scheduler, AbortFreesPagesAndEndsTheStream) {
  FakeModel model(256, 1);
  model.delay_ms = 2;
  SchedulerOptions o = options(256);
  o.disable_radix_cache = true;
  Scheduler s(o, model);
  auto st = submit(s, "victim", prompt(10, 1), 1000);
  auto waiting_one = submit(s, "other", prompt(10, 2), 3);
  ASSERT_TRUE(st->next().has_value());
  // Stats are published at the end of a step, after its tokens were streamed: wait for them.
  for (int i = 0; i < 200 && s.stats().free_pages == 256; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_LT(s.stats().free_pages, 256);
  s.abort("victim");
  Result r = collect(*st);
  EXPECT_EQ(r.finish.type, FinishReason::Type::kAbort);
  collect(*waiting_one);
  // Give the loop a moment to publish its stats after the last step.
  for (int i = 0; i < 100 && s.stats().free_pages != 256; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(s.stats().free_pages, 256);
  s.abort("unknown-rid");  // no-op
}

TEST(Scheduler, AbortAllEndsEveryRequestWithItsMessage) {
  FakeModel model(256, 1);
  model.delay_ms = 2;
  SchedulerOptions o = options(256);
  o.disable_radix_cache = true;
  o.max_running_requests = 1;  // the second request waits: both queues are aborted
  Scheduler s(o, model);
  auto running = submit(s, "running", prompt(10, 1), 100000);
  auto queued = submit(s, "queued", prompt(10, 2), 100000);
  ASSERT_TRUE(running->next().has_value());
  s.abort_all("the server is shutting down", 503);
  for (auto* st : {running.get(), queued.get()}) {
    Result r = collect(*st);
    EXPECT_EQ(r.finish.type, FinishReason::Type::kAbort);
    EXPECT_EQ(r.finish.message, "the server is shutting down");
    EXPECT_EQ(r.finish.status_code, 503);
  }
  // The default is a user abort, as /abort_request gives.
  auto next = submit(s, "next", prompt(10, 3), 100000);
  ASSERT_TRUE(next->next().has_value());
  s.abort_all();
  Result r = collect(*next);
  EXPECT_EQ(r.finish.message, "Aborted by request");
  EXPECT_EQ(r.finish.status_code, 0);
}

TEST(Scheduler, StopConditions) {
  FakeModel model(256, 1);
  Scheduler s(options(256), model);
  auto p = prompt(6, 4);
  auto ref = reference(p, 20);
  // A stop token: the 4th reference token.
  SamplingParams sp;
  sp.stop_token_ids = {ref[3]};
  Result a = collect(*submit(s, "a", p, 20, sp));
  const auto first = std::find(ref.begin(), ref.end(), ref[3]) - ref.begin();
  EXPECT_EQ(a.ids.size(), static_cast<size_t>(first + 1));
  EXPECT_EQ(a.finish.matched_token, ref[3]);
  // EOS, unless ignore_eos.
  Request r;
  r.rid = "eos";
  r.input_ids = p;
  r.params.temperature = 0;
  r.params.max_new_tokens = 20;
  r.eos_ids = {ref[0]};
  r.stream = std::make_shared<RequestStream>();
  auto eos_stream = r.stream;
  s.submit(std::move(r));
  Result e = collect(*eos_stream);
  EXPECT_EQ(e.ids.size(), 1u);
  EXPECT_EQ(e.finish.type, FinishReason::Type::kStop);
  // min_new_tokens suppresses the stop token until reached.
  SamplingParams mn;
  mn.stop_token_ids = {ref[0]};
  mn.min_new_tokens = 3;
  Result m = collect(*submit(s, "m", p, 5, mn));
  EXPECT_GE(m.ids.size(), 3u);
  EXPECT_NE(m.ids[0], ref[0]);
  // max_new_tokens = 0: prefill only.
  Result z = collect(*submit(s, "z", p, 0));
  EXPECT_TRUE(z.ids.empty());
  EXPECT_EQ(z.finish.type, FinishReason::Type::kLength);
  // Context length.
  SchedulerOptions small = options(256);
  small.context_length = 10;
  FakeModel model2(256, 1);
  Scheduler c(small, model2);
  Result cl = collect(*submit(c, "c", p, 100));
  EXPECT_EQ(cl.ids.size(), 4u);
  EXPECT_EQ(cl.finish.type, FinishReason::Type::kLength);
  Result too_long = collect(*submit(c, "t", prompt(10, 1), 5));
  EXPECT_EQ(too_long.finish.type, FinishReason::Type::kAbort);
  EXPECT_EQ(too_long.finish.status_code, 400);
}

TEST(Scheduler, StopStringsThroughTheDecoder) {
  // Decodes token t as the letter 'a' + t % 26 and matches stop strings on the text.
  struct Letters : OutputDecoder {
    std::string text, stop;
    std::string push(int32_t t, std::optional<std::string>* matched) override {
      text += static_cast<char>('a' + t % 26);
      if (!stop.empty() && text.size() >= stop.size() &&
          text.compare(text.size() - stop.size(), stop.size(), stop) == 0) {
        *matched = stop;
        return std::string(1, text.back()).substr(0, 0);
      }
      return std::string(1, text.back());
    }
    std::string finish() override { return ""; }
  };
  FakeModel model(256, 1);
  Scheduler s(options(256), model);
  auto p = prompt(6, 5);
  auto ref = reference(p, 10);
  auto dec = std::make_unique<Letters>();
  dec->stop = std::string(1, static_cast<char>('a' + ref[4] % 26));
  Request r;
  r.rid = "s";
  r.input_ids = p;
  r.params.temperature = 0;
  r.params.max_new_tokens = 10;
  r.params.stop = {dec->stop};
  r.decoder = std::move(dec);
  r.stream = std::make_shared<RequestStream>();
  auto st = r.stream;
  s.submit(std::move(r));
  Result res = collect(*st);
  EXPECT_EQ(res.finish.type, FinishReason::Type::kStop);
  ASSERT_TRUE(res.finish.matched_text.has_value());
  EXPECT_LE(res.ids.size(), 5u);
}

TEST(Scheduler, SeededSamplingIsReproducibleAcrossBatches) {
  FakeModel m1(256, 1), m2(256, 1);
  Scheduler alone(options(256), m1), batched(options(256), m2);
  SamplingParams sp;
  sp.temperature = 0.9;
  sp.sampling_seed = 77;
  Result a = collect(*submit(alone, "a", prompt(7, 9), 15, sp));
  std::vector<std::shared_ptr<RequestStream>> others;
  for (int i = 0; i < 3; ++i) others.push_back(submit(batched, "o" + std::to_string(i), prompt(5, i), 15, sp));
  Result b = collect(*submit(batched, "a", prompt(7, 9), 15, sp));
  for (auto& o : others) collect(*o);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_NE(a.ids, reference(prompt(7, 9), 15));  // really sampled
}

TEST(Scheduler, ShutdownAbortsInFlightAndIsIdempotent) {
  FakeModel model(256, 1);
  model.delay_ms = 2;
  auto s = std::make_unique<Scheduler>(options(256), model);
  auto st = submit(*s, "x", prompt(5, 1), 100000);
  ASSERT_TRUE(st->next().has_value());
  s->shutdown();
  s->shutdown();
  Result r = collect(*st);
  EXPECT_EQ(r.finish.type, FinishReason::Type::kAbort);
  EXPECT_THROW(submit(*s, "y", prompt(5, 1), 1), std::runtime_error);
  EXPECT_THROW(SchedulerOptions o = options(0); Scheduler bad(o, model), std::invalid_argument);
}

// ---- Prefix sharing between requests that run at the same time.

namespace {

// Polls `done` for up to 10 s (fails the test instead of hanging).
template <class F>
void wait_for(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out";
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Prefill tokens actually computed (every forward's new tokens minus its decode tokens).
struct PrefillCounter {
  std::mutex mu;
  int64_t prefill_tokens = 0;
  int64_t steps = 0;
  void attach(Scheduler& s) {
    s.set_step_observer([this](const StepInfo& i) {
      std::lock_guard<std::mutex> l(mu);
      prefill_tokens += i.num_tokens - i.num_decode;
      steps += 1;
    });
  }
};

}  // namespace

TEST(Scheduler, SharedPrefixSubmittedTogetherIsComputedOnce) {
  constexpr int kShared = 45, kOwn = 6, kOut = 6, kN = 8;
  for (const char* policy : {"fcfs", "lpm"}) {
    for (int32_t ps : {1, 4}) {
      SchedulerOptions on = options(512 / ps, ps), off = on;
      on.schedule_policy = off.schedule_policy = policy;
      off.disable_radix_cache = true;
      FakeModel m_on(512 / ps, ps), m_off(512 / ps, ps);
      PrefillCounter counter;  // before the schedulers: it must outlive their threads
      Scheduler s_on(on, m_on), s_off(off, m_off);
      counter.attach(s_on);
      std::vector<std::vector<int32_t>> prompts;
      std::vector<std::shared_ptr<RequestStream>> st_on, st_off;
      for (int i = 0; i < kN; ++i) {
        auto p = prompt(kShared, 7);
        auto own = prompt(kOwn, 100 + i);
        p.insert(p.end(), own.begin(), own.end());
        prompts.push_back(p);
        st_on.push_back(submit(s_on, "r" + std::to_string(i), p, kOut));
        st_off.push_back(submit(s_off, "r" + std::to_string(i), p, kOut));
      }
      int64_t cached = 0;
      for (int i = 0; i < kN; ++i) {
        Result a = collect(*st_on[i]);
        Result b = collect(*st_off[i]);
        EXPECT_EQ(a.ids, reference(prompts[i], kOut)) << policy << " ps " << ps << " r" << i;
        EXPECT_EQ(a.ids, b.ids);
        EXPECT_EQ(b.last.cached_tokens, 0);
        if (i == 0) {
          EXPECT_EQ(a.last.cached_tokens, 0);
        } else {
          EXPECT_GE(a.last.cached_tokens, kShared / ps * ps) << policy << " ps " << ps << " r" << i;
        }
        cached += a.last.cached_tokens;
      }
      {
        std::lock_guard<std::mutex> l(counter.mu);
        EXPECT_EQ(counter.prefill_tokens, kN * (kShared + kOwn) - cached);
      }
      EXPECT_EQ(s_on.stats().cached_tokens, cached);
      EXPECT_TRUE(s_on.flush_cache());
      EXPECT_EQ(s_on.stats().free_pages, 512 / ps);
      // A stream ends when its last token is out; the scheduler thread frees the pages right
      // after, so wait (bounded) for that instead of racing it.
      wait_for([&] { return s_off.stats().free_pages == 512 / ps; });
      EXPECT_EQ(s_off.stats().free_pages, 512 / ps);
    }
  }
}

TEST(Scheduler, ChunkedPrefixIsMatchedByARequestArrivingMidPrefill) {
  SchedulerOptions o = options(256, 4);
  o.chunked_prefill_size = 8;
  FakeModel model(256, 4);
  model.delay_ms = 2;
  std::atomic<int> prefill_steps{0};  // outlives the scheduler's thread
  Scheduler s(o, model);
  s.set_step_observer([&](const StepInfo& i) { prefill_steps += i.num_prefill; });
  const auto long_prompt = prompt(64, 11);
  auto a = submit(s, "a", long_prompt, 30);
  wait_for([&] { return prefill_steps.load() >= 3; });
  // A is still prefilling (64 tokens at 8 per step): only its first chunks are in the tree.
  auto second = std::vector<int32_t>(long_prompt.begin(), long_prompt.begin() + 40);
  const auto own = prompt(10, 12);
  second.insert(second.end(), own.begin(), own.end());
  Result rb = collect(*submit(s, "b", second, 5));
  Result ra = collect(*a);
  EXPECT_EQ(ra.ids, reference(long_prompt, 30));
  EXPECT_EQ(rb.ids, reference(second, 5));
  EXPECT_EQ(ra.last.cached_tokens, 0);
  EXPECT_EQ(rb.last.cached_tokens, 40);
  EXPECT_TRUE(s.flush_cache());
  EXPECT_EQ(s.stats().free_pages, 256);
}

TEST(Scheduler, SharedPrefixWithRetractionLeaksNothing) {
  for (int32_t ps : {1, 2}) {
    const int64_t pages = 80 / ps;  // 80 tokens; unshared the four need 4 x (36 + 16)
    SchedulerOptions o = options(pages, ps);
    o.init_new_token_ratio = 0.0;  // admit greedily so decoding runs out of pages
    FakeModel model(pages, ps);
    model.delay_ms = 1;
    model.hold = true;  // all four are queued before the first step
    Scheduler s(o, model);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 4; ++i) {
      auto p = prompt(32, 50);
      auto own = prompt(4, 60 + i);
      p.insert(p.end(), own.begin(), own.end());
      prompts.push_back(p);
      streams.push_back(submit(s, std::to_string(i), p, 16));
    }
    model.hold = false;
    int64_t retractions = 0, cached = 0;
    for (int i = 0; i < 4; ++i) {
      Result r = collect(*streams[i]);
      EXPECT_EQ(r.ids, reference(prompts[i], 16)) << "ps " << ps << " r" << i;
      retractions += r.last.num_retractions;
      cached += r.last.cached_tokens;
    }
    EXPECT_GT(retractions, 0) << "ps " << ps;
    EXPECT_GE(cached, 3 * 32) << "ps " << ps;
    EXPECT_TRUE(s.flush_cache());
    EXPECT_EQ(s.stats().free_pages, pages);
    EXPECT_EQ(s.stats().cached_pages, 0);
  }
}

TEST(Scheduler, AbortMidChunkedPrefillReleasesTheCachedChunks) {
  SchedulerOptions o = options(128, 2);
  o.chunked_prefill_size = 8;
  FakeModel model(128, 2);
  model.delay_ms = 2;
  std::atomic<int> prefill_steps{0};  // outlives the scheduler's thread
  Scheduler s(o, model);
  s.set_step_observer([&](const StepInfo& i) { prefill_steps += i.num_prefill; });
  auto a = submit(s, "a", prompt(200, 13), 1000);  // aborted mid-prefill, or at worst decoding
  wait_for([&] { return prefill_steps.load() >= 2; });
  s.abort("a");
  Result r = collect(*a);
  EXPECT_EQ(r.finish.type, FinishReason::Type::kAbort);
  EXPECT_TRUE(s.flush_cache());  // the chunks it cached are unlocked now
  EXPECT_EQ(s.stats().free_pages, 128);
  EXPECT_EQ(s.stats().cached_pages, 0);
}

// ---- Constrained decoding through a GrammarMatcher.

namespace {

// Allows exactly `script` in order, then only `eos`; counts what it was asked.
class ScriptMatcher : public GrammarMatcher {
 public:
  ScriptMatcher(std::vector<int32_t> script, int32_t eos, bool lie = false)
      : script_(std::move(script)), eos_(eos), lie_(lie) {}
  void fill_bitmask(std::span<uint32_t> mask) override {
    ++*fills;
    std::fill(mask.begin(), mask.end(), 0u);
    const int32_t t = pos_ < script_.size() ? script_[pos_] : eos_;
    mask[t / 32] |= 1u << (t % 32);
  }
  bool accept_token(int32_t token) override {
    const int32_t want = pos_ < script_.size() ? script_[pos_] : eos_;
    if (token != want || lie_) return false;
    ++pos_;
    return true;
  }
  std::shared_ptr<int> fills = std::make_shared<int>(0);  // outlives the matcher (freed at finish)

 private:
  std::vector<int32_t> script_;
  size_t pos_ = 0;
  int32_t eos_;
  bool lie_;
};

}  // namespace

TEST(Scheduler, GrammarMaskConstrainsTheOutputAndEndsAtEos) {
  FakeModel model(256, 1);
  Scheduler s(options(256), model);
  const std::vector<int32_t> script{5, 9, 3, 60, 1};
  const int32_t eos = 63;
  for (double temperature : {0.0, 1.0}) {
    Request r;
    r.rid = "g";
    r.input_ids = prompt(7, 4);
    r.params.temperature = temperature;
    r.params.max_new_tokens = 50;
    r.eos_ids = {eos};
    auto matcher = std::make_unique<ScriptMatcher>(script, eos);
    const std::shared_ptr<int> fills = matcher->fills;
    r.grammar = std::move(matcher);
    r.stream = std::make_shared<RequestStream>();
    auto stream = r.stream;
    s.submit(std::move(r));
    Result res = collect(*stream);
    std::vector<int32_t> want = script;
    want.push_back(eos);
    EXPECT_EQ(res.ids, want) << "temperature " << temperature;
    EXPECT_EQ(res.finish.type, FinishReason::Type::kStop);
    EXPECT_EQ(res.finish.matched_token, eos);
    EXPECT_EQ(*fills, static_cast<int>(want.size()));  // one mask per sampled token
  }
}

TEST(Scheduler, TokenTheGrammarRejectsAbortsTheRequestWithAMessage) {
  FakeModel model(256, 1);
  Scheduler s(options(256), model);
  Request r;
  r.rid = "bad";
  r.input_ids = prompt(7, 4);
  r.params.temperature = 0;
  r.params.max_new_tokens = 10;
  r.grammar = std::make_unique<ScriptMatcher>(std::vector<int32_t>{5}, 63, /*lie=*/true);
  r.stream = std::make_shared<RequestStream>();
  auto stream = r.stream;
  s.submit(std::move(r));
  Result res = collect(*stream);
  EXPECT_EQ(res.finish.type, FinishReason::Type::kAbort);
  EXPECT_NE(res.finish.message.find("grammar rejected"), std::string::npos) << res.finish.message;
  EXPECT_TRUE(s.flush_cache());
  EXPECT_EQ(s.stats().free_pages, 256);
}

// LoRA: requests of three adapters and the base model with max_loras_per_batch 2. No forward
// holds more than two distinct adapters (the third waits for a slot), every sequence reaches the
// backend with its adapter id, outputs are unchanged, and a prompt cached with one adapter is not
// reused by another (cached_tokens 0) but is by the same adapter.
TEST(Scheduler, LoraAdaptersAreLimitedPerBatchAndNeverSharePrefixes) {
  struct LoraModel : FakeModel {
    using FakeModel::FakeModel;
    Logits forward(std::span<const Sequence> seqs) override {
      std::set<int32_t> adapters;
      for (const auto& s : seqs)
        if (s.lora_id != 0) adapters.insert(s.lora_id);
      max_adapters = std::max<int32_t>(max_adapters, static_cast<int32_t>(adapters.size()));
      for (int32_t a : adapters) seen.insert(a);
      return FakeModel::forward(seqs);
    }
    int32_t max_adapters = 0;
    std::set<int32_t> seen;
  };
  LoraModel model(1024, 1);
  SchedulerOptions o = options(1024);
  o.max_loras_per_batch = 2;
  Scheduler s(o, model);
  auto with_adapter = [&](const std::string& rid, std::vector<int32_t> p, int32_t adapter) {
    Request r;
    r.rid = rid;
    r.input_ids = std::move(p);
    r.params.temperature = 0.0;
    r.params.max_new_tokens = 8;
    r.lora_id = adapter;
    r.stream = std::make_shared<RequestStream>();
    auto stream = r.stream;
    s.submit(std::move(r));
    return stream;
  };
  model.hold = true;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) streams.push_back(with_adapter("r" + std::to_string(i), prompt(12, i), i % 4));
  model.hold = false;
  for (int i = 0; i < 8; ++i) EXPECT_EQ(collect(*streams[i]).ids, reference(prompt(12, i), 8)) << i;
  EXPECT_EQ(model.max_adapters, 2);
  EXPECT_EQ(model.seen, (std::set<int32_t>{1, 2, 3}));

  const auto shared = prompt(20, 99);
  EXPECT_EQ(collect(*with_adapter("x1", shared, 1)).last.cached_tokens, 0);
  EXPECT_EQ(collect(*with_adapter("x2", shared, 2)).last.cached_tokens, 0);
  EXPECT_EQ(collect(*with_adapter("x0", shared, 0)).last.cached_tokens, 0);
  EXPECT_GT(collect(*with_adapter("x1b", shared, 1)).last.cached_tokens, 0);
}

// A request's LoRA hold is dropped before its last chunk is pushed, so that the client who read
// the answer can unload the adapter at once. The finished request leaves the running set only at
// the end of the step: here a request of the same batch blocks that step (its decoder waits) while
// the hold is checked.
TEST(Scheduler, LoraHoldIsReleasedBeforeTheLastChunk) {
  struct Gate : OutputDecoder {
    std::atomic<bool>* open = nullptr;
    std::string push(int32_t, std::optional<std::string>*) override {
      // Bounded: were the batch ordered otherwise, the test fails instead of hanging.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!open->load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      return "";
    }
    std::string finish() override { return ""; }
  };
  FakeModel model(256, 1);
  std::atomic<bool> open{false};  // outlives the scheduler's thread
  Scheduler s(options(256), model);
  model.hold = true;
  auto first = submit(s, "first", prompt(4, 1), 1);  // its forward waits: the next two meet
  wait_for([&] { return model.forwards.load() > 0; });
  auto hold = std::make_shared<int>(7);
  Request a;
  a.rid = "lora";
  a.input_ids = prompt(6, 2);
  a.params.temperature = 0;
  a.params.max_new_tokens = 1;
  a.lora_id = 1;
  a.lora_hold = hold;
  a.stream = std::make_shared<RequestStream>();
  auto a_stream = a.stream;
  s.submit(std::move(a));
  Request b;
  b.rid = "gated";
  b.input_ids = prompt(6, 3);
  b.params.temperature = 0;
  b.params.max_new_tokens = 2;
  auto gate = std::make_unique<Gate>();
  gate->open = &open;
  b.decoder = std::move(gate);
  b.stream = std::make_shared<RequestStream>();
  auto b_stream = b.stream;
  s.submit(std::move(b));
  model.hold = false;
  collect(*first);
  Result ra = collect(*a_stream);
  EXPECT_EQ(ra.finish.type, FinishReason::Type::kLength);
  EXPECT_EQ(hold.use_count(), 1) << "the finished request still holds its adapter";
  open = true;
  EXPECT_EQ(collect(*b_stream).finish.type, FinishReason::Type::kLength);
}
