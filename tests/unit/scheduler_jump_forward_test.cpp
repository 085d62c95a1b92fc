// Jump-forward in the scheduler, on the fake model that reads every sequence back through its KV
// pages: a grammar over a small text vocabulary forces text between free characters; the
// scheduler must append the forced tokens in one step (fewer forwards), extend their KV correctly
// (the output matches a naive generator that recomputes from the whole sequence), retokenise the
// sampled token with the forced text (the boundary merge), and keep stop conditions, usage counts,
// log-probabilities and page accounting right.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "core/scheduler/scheduler.h"
#include "core/scheduler/side_worker.h"
#include "tests/unit/scheduler_fake_model.h"

using namespace sable::scheduler;
using namespace sable::scheduler::fake;

namespace {

constexpr int32_t kEos = 63;

// The test's vocabulary: single characters and a few merges; id = index.
const std::vector<std::string>& vocab() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> t{"{", "}", "\"", ":", " ", ",", "a", "b", "k", "x", "y", "z",
                               "{\"", "\":", "\": ", ", \"", "\"}", "xy"};
    t.resize(kEos);  // unused ids spell nothing
    return t;
  }();
  return v;
}

// The test's "tokenizer": greedy longest match over the vocabulary (its canonical encoding).
std::vector<int32_t> encode(std::string_view text) {
  std::vector<int32_t> ids;
  while (!text.empty()) {
    int32_t best = -1;
    for (int32_t id = 0; id < kEos; ++id) {
      const std::string& t = vocab()[id];
      if (!t.empty() && text.substr(0, t.size()) == t &&
          (best < 0 || t.size() > vocab()[best].size()))
        best = id;
    }
    ids.push_back(best);
    text.remove_prefix(vocab()[best].size());
  }
  return ids;
}

std::string spell(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += id == kEos ? "" : vocab()[id];
  return s;
}

// A grammar: the output spells `pattern`, where each '?' is 'a' or 'b' and every other character
// is forced; then EOS. Jump-forward returns the canonical encoding of the last token's text plus
// the forced characters up to the next '?'.
class PatternMatcher : public GrammarMatcher {
 public:
  explicit PatternMatcher(std::string pattern, std::shared_ptr<int> jumps = nullptr)
      : pattern_(std::move(pattern)), jumps_(std::move(jumps)) {}
  void fill_bitmask(std::span<uint32_t> mask) override {
    std::fill(mask.begin(), mask.end(), 0u);
    for (int32_t id = 0; id < kVocab; ++id)
      if (fits(id)) mask[id / 32] |= 1u << (id % 32);
  }
  bool accept_token(int32_t token) override {
    if (!fits(token)) return false;
    history_.push_back(pos_);
    pos_ = token == kEos ? pattern_.size() + 1 : pos_ + vocab()[token].size();
    return true;
  }
  void rollback(int32_t n) override {
    ASSERT_LE(static_cast<size_t>(n), history_.size());
    if (n == 0) return;
    pos_ = history_[history_.size() - n];
    history_.resize(history_.size() - n);
  }
  std::vector<int32_t> jump_forward(int32_t last) override {
    size_t end = pos_;
    while (end < pattern_.size() && pattern_[end] != '?') ++end;
    if (end == pos_) return {};
    const std::vector<int32_t> ids = encode(vocab()[last] + pattern_.substr(pos_, end - pos_));
    rollback(1);
    for (int32_t id : ids) EXPECT_TRUE(accept_token(id)) << id;
    if (jumps_) ++*jumps_;
    return ids;
  }

 private:
  bool fits(int32_t id) const {
    if (pos_ > pattern_.size()) return false;  // after EOS
    if (id == kEos) return pos_ == pattern_.size();
    const std::string& t = vocab()[id];
    if (t.empty() || pos_ + t.size() > pattern_.size()) return false;
    for (size_t i = 0; i < t.size(); ++i) {
      const char want = pattern_[pos_ + i];
      if (want == '?' ? (t[i] != 'a' && t[i] != 'b') : t[i] != want) return false;
    }
    return true;
  }
  std::string pattern_;
  size_t pos_ = 0;
  std::vector<size_t> history_;
  std::shared_ptr<int> jumps_;
};

const std::string kPattern = R"({"k": ?, "xy": ??, "z": "?"})";

// The naive generator: greedy over the masked logits of the whole sequence, appending what the
// grammar's jump returns (when `jump`), up to max_new tokens.
std::vector<int32_t> reference(std::vector<int32_t> seq, bool jump, int max_new,
                               size_t cap = SIZE_MAX) {
  PatternMatcher m(kPattern);
  std::vector<int32_t> out;
  std::vector<uint32_t> mask(2);
  float logits[kVocab];
  while (static_cast<int>(out.size()) < max_new) {
    fake_logits(seq, logits);
    m.fill_bitmask(mask);
    int32_t t = -1;
    for (int32_t id = 0; id < kVocab; ++id)
      if ((mask[id / 32] >> (id % 32) & 1) && (t < 0 || logits[id] > logits[t])) t = id;
    EXPECT_TRUE(m.accept_token(t));
    std::vector<int32_t> add{t};
    if (jump && t != kEos && static_cast<int>(out.size()) + 1 < max_new) {
      std::vector<int32_t> j = m.jump_forward(t);
      if (j.size() > cap) {
        m.rollback(static_cast<int32_t>(j.size() - cap));
        j.resize(cap);
      }
      if (!j.empty()) add = j;
    }
    for (int32_t a : add) {
      if (static_cast<int>(out.size()) == max_new) break;
      out.push_back(a);
      seq.push_back(a);
    }
    if (t == kEos) break;
  }
  return out;
}

// A greedy request constrained by `grammar`, submitted; its stream.
std::shared_ptr<RequestStream> submit_with(Scheduler& s, const std::string& rid,
                                           std::vector<int32_t> p, int max_new,
                                           std::unique_ptr<GrammarMatcher> grammar,
                                           bool logprobs = false) {
  Request r;
  r.rid = rid;
  r.input_ids = std::move(p);
  r.params.temperature = 0;
  r.params.max_new_tokens = max_new;
  r.eos_ids = {kEos};
  r.logprobs.return_logprob = logprobs;
  r.grammar = std::move(grammar);
  r.stream = std::make_shared<RequestStream>();
  auto stream = r.stream;
  s.submit(std::move(r));
  return stream;
}

std::shared_ptr<RequestStream> submit_constrained(Scheduler& s, const std::string& rid,
                                                  std::vector<int32_t> p, int max_new,
                                                  std::shared_ptr<int> jumps = nullptr,
                                                  bool logprobs = false) {
  return submit_with(s, rid, std::move(p), max_new,
                     std::make_unique<PatternMatcher>(kPattern, std::move(jumps)), logprobs);
}

SchedulerOptions jump_options(int64_t pages, int32_t page_size, bool disable) {
  SchedulerOptions o = options(pages, page_size);
  o.disable_jump_forward = disable;
  return o;
}

}  // namespace

TEST(SchedulerJumpForward, AppendsForcedTokensInOneStepAndMatchesTheReference) {
  for (int32_t page_size : {1, 4}) {
    std::map<bool, int> forwards;
    for (bool disable : {false, true}) {
      FakeModel model(256, page_size);
      Scheduler s(jump_options(256, page_size, disable), model);
      auto jumps = std::make_shared<int>(0);
      Result r = collect(*submit_constrained(s, "j", prompt(9, 3), 100, jumps));
      const std::vector<int32_t> want = reference(prompt(9, 3), !disable, 100);
      EXPECT_EQ(r.ids, want) << "page_size " << page_size << " disable " << disable;
      EXPECT_EQ(r.finish.type, FinishReason::Type::kStop);
      EXPECT_EQ(r.finish.matched_token, kEos);
      EXPECT_EQ(spell(r.ids).size(), kPattern.size());
      EXPECT_EQ(r.last.completion_tokens, static_cast<int64_t>(r.ids.size()));
      forwards[disable] = model.forwards.load();
      ASSERT_TRUE(s.flush_cache());
      const int64_t jumped = s.stats().jump_forward_tokens;
      if (disable) {
        EXPECT_EQ(*jumps, 0);
        EXPECT_EQ(jumped, 0);
        EXPECT_EQ(forwards[disable], static_cast<int>(r.ids.size()));  // one per token
      } else {
        EXPECT_GT(*jumps, 0);
        // Every token a jump appended beyond the sampled one saved a forward.
        EXPECT_EQ(forwards[disable] + jumped, static_cast<int64_t>(r.ids.size()));
        // The first sampled token merged with the forced text that followed it.
        EXPECT_EQ(r.ids.front(), 12) << "expected the boundary token {\"";
      }
      EXPECT_TRUE(s.flush_cache());  // also publishes the counters of the last step
      EXPECT_EQ(s.stats().generation_tokens, static_cast<int64_t>(r.ids.size()));
      EXPECT_EQ(s.stats().free_pages, 256);
    }
    EXPECT_LT(forwards[false] * 2, forwards[true]) << "page_size " << page_size;
  }
}

// extend_steps counts the steps in which a sequence ran several tokens (eager on a graph runner):
// the prompt's prefill, then each step that runs a jump's forced tokens; none without jumps.
TEST(SchedulerJumpForward, ExtendStepsCountThePrefillAndTheJumps) {
  for (bool disable : {false, true}) {
    FakeModel model(256, 1);
    Scheduler s(jump_options(256, 1, disable), model);
    auto seen = std::make_shared<std::atomic<int>>(0);
    s.set_step_observer([seen](const StepInfo& info) {
      if (info.num_tokens > info.num_seqs) seen->fetch_add(1);
    });
    const Result r = collect(*submit_constrained(s, "e", prompt(9, 3), 100));
    ASSERT_EQ(spell(r.ids).size(), kPattern.size());
    ASSERT_TRUE(s.flush_cache());
    EXPECT_EQ(s.stats().extend_steps, seen->load()) << "disable " << disable;
    if (disable) {
      EXPECT_EQ(s.stats().extend_steps, 1) << "the prefill only";
    } else {
      EXPECT_GT(s.stats().extend_steps, 1);
      EXPECT_LT(s.stats().extend_steps, s.stats().num_steps);
    }
  }
}

// The runner sizes a forward for the token budget plus one token per request, so one jump
// appends at most budget / max_running_requests tokens (here 24 / 8 = 3); the rest of the forced
// text is rolled back in the grammar and comes with the next steps.
TEST(SchedulerJumpForward, LongJumpsAreCutToTheBudgetShare) {
  FakeModel model(256, 1);
  SchedulerOptions o = jump_options(256, 1, false);
  o.chunked_prefill_size = 24;
  o.max_running_requests = 8;
  Scheduler s(o, model);
  auto widest = std::make_shared<std::atomic<int>>(0);  // most tokens a decode step ran
  s.set_step_observer([widest](const StepInfo& info) {
    if (info.num_prefill == 0) *widest = std::max(widest->load(), info.num_tokens);
  });
  auto jumps = std::make_shared<int>(0);
  Result r = collect(*submit_constrained(s, "cap", prompt(9, 3), 100, jumps));
  EXPECT_EQ(r.ids, reference(prompt(9, 3), true, 100, 3));
  ASSERT_TRUE(s.flush_cache());
  EXPECT_EQ(widest->load(), 3) << "uncut, `, \"z\": \"` takes 4 tokens";
  EXPECT_EQ(r.finish.type, FinishReason::Type::kStop);
  EXPECT_EQ(spell(r.ids).size(), kPattern.size());
  EXPECT_GT(*jumps, 0);
}

// A client that reads the counters as soon as its answer arrives (the e2e jump-forward test reads
// /server_info right after /generate returns) sees the steps and tokens that produced it. The step
// observer holds the scheduler thread at the end of the step that finished the request, so the
// end-of-step publish has not run when the stats are read: only the publish before the final chunk
// makes them current (the e2e test read one step short under load before it).
TEST(SchedulerJumpForward, CountersAreCurrentWhenTheAnswerArrives) {
  FakeModel model(256, 1);
  Scheduler s(jump_options(256, 1, false), model);
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::shared_ptr<RequestStream> stream;
  std::mutex stream_mutex;
  s.set_step_observer([&](const StepInfo&) {
    std::shared_ptr<RequestStream> st;
    {
      std::lock_guard<std::mutex> lock(stream_mutex);
      st = stream;
    }
    if (!st || !st->finished()) return;
    std::unique_lock<std::mutex> lock(m);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
  });
  {
    std::lock_guard<std::mutex> lock(stream_mutex);
    stream = submit_constrained(s, "c", prompt(9, 3), 100);
  }
  Result r = collect(*stream);
  const SchedulerStats st = s.stats();  // the scheduler thread waits in the observer meanwhile
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(st.generation_tokens, static_cast<int64_t>(r.ids.size()));
  EXPECT_GT(st.jump_forward_tokens, 0);
  EXPECT_EQ(st.num_steps + st.jump_forward_tokens, static_cast<int64_t>(r.ids.size()));
  EXPECT_EQ(st.finished_requests, 1);
  s.set_step_observer(nullptr);
}

TEST(SchedulerJumpForward, MaxNewTokensCutsAJumpShort) {
  FakeModel model(256, 1);
  Scheduler s(jump_options(256, 1, false), model);
  for (int max_new = 1; max_new <= 8; ++max_new) {
    Result r = collect(*submit_constrained(s, "m", prompt(9, 3), max_new));
    EXPECT_EQ(r.ids, reference(prompt(9, 3), true, max_new)) << max_new;
    EXPECT_EQ(static_cast<int>(r.ids.size()), max_new);
    EXPECT_EQ(r.finish.type, FinishReason::Type::kLength);
    EXPECT_EQ(r.finish.length, max_new);
    EXPECT_EQ(r.last.completion_tokens, max_new);
  }
  EXPECT_TRUE(s.flush_cache());
  EXPECT_EQ(s.stats().free_pages, 256);
}

TEST(SchedulerJumpForward, StopStringInsideForcedTextEndsThere) {
  // Spells each token; the stop string "xy" is forced text the grammar jumps over.
  struct Spell : OutputDecoder {
    std::string text;
    bool stopped = false;
    std::string push(int32_t t, std::optional<std::string>* matched) override {
      if (stopped) return {};
      const std::string add = t == kEos ? "" : vocab()[t];
      text += add;
      const size_t at = text.find("xy");
      if (at == std::string::npos) return add;
      stopped = true;
      *matched = "xy";
      return add.substr(0, add.size() - (text.size() - at));
    }
    std::string finish() override { return {}; }
  };
  FakeModel model(256, 1);
  Scheduler s(jump_options(256, 1, false), model);
  Request req;
  req.rid = "stop";
  req.input_ids = prompt(9, 3);
  req.params.temperature = 0;
  req.params.max_new_tokens = 100;
  req.params.stop = {"xy"};
  req.eos_ids = {kEos};
  req.decoder = std::make_unique<Spell>();
  req.grammar = std::make_unique<PatternMatcher>(kPattern);
  req.stream = std::make_shared<RequestStream>();
  auto stream = req.stream;
  s.submit(std::move(req));
  Result r = collect(*stream);
  EXPECT_EQ(r.finish.type, FinishReason::Type::kStop);
  EXPECT_EQ(r.finish.matched_text, "xy");
  const std::string spelled = spell(r.ids);
  const size_t at = spelled.find("xy");
  ASSERT_NE(at, std::string::npos) << spelled;
  EXPECT_EQ(at + 2, spelled.size()) << "no token after the one that completed the stop";
  EXPECT_EQ(r.text, spelled.substr(0, at)) << "the text ends before the stop string";
  EXPECT_EQ(r.text.substr(0, 6), R"({"k": )");
  EXPECT_EQ(r.last.completion_tokens, static_cast<int64_t>(r.ids.size()));
}

// A request with log-probabilities jumps the same way (the same tokens as without them); the
// sampled tokens keep the sampler's log-probabilities, the forced ones are null (NaN).
TEST(SchedulerJumpForward, ForcedTokensHaveNullLogprobs) {
  FakeModel model(256, 1);
  Scheduler s(jump_options(256, 1, false), model);
  auto jumps = std::make_shared<int>(0);
  Result r = collect(*submit_constrained(s, "lp", prompt(9, 3), 100, jumps, /*logprobs=*/true));
  EXPECT_GT(*jumps, 0);
  EXPECT_EQ(r.ids, reference(prompt(9, 3), true, 100));
  ASSERT_EQ(r.output_lp.size(), r.ids.size());
  int sampled = 0, forced = 0;
  for (size_t i = 0; i < r.ids.size(); ++i) {
    EXPECT_EQ(r.output_lp[i].chosen.token, r.ids[i]);
    if (std::isnan(r.output_lp[i].chosen.logprob)) {
      ++forced;
    } else {
      ++sampled;
      EXPECT_LE(r.output_lp[i].chosen.logprob, 0.0f);
    }
  }
  ASSERT_TRUE(s.flush_cache());
  EXPECT_GE(forced, s.stats().jump_forward_tokens);
  EXPECT_GE(sampled, 1);
  EXPECT_LE(sampled, model.forwards.load()) << "one sampled token per forward at most";
  EXPECT_EQ(r.ids.back(), kEos);
  EXPECT_FALSE(std::isnan(r.output_lp.back().chosen.logprob)) << "EOS was sampled";
}

// A batch of constrained requests under a pool small enough to retract: jumps, extends and
// retractions together keep every output equal to the reference and leak no page.
TEST(SchedulerJumpForward, BatchWithRetractionKeepsOutputsAndLeaksNothing) {
  for (int32_t page_size : {1, 4}) {
    const int64_t pages = page_size == 1 ? 90 : 24;
    SchedulerOptions o = jump_options(pages, page_size, false);
    o.init_new_token_ratio = 0.0;  // admit greedily so decoding runs out of pages
    FakeModel model(pages, page_size);
    model.hold = true;
    Scheduler s(o, model);
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 6; ++i)
      streams.push_back(submit_constrained(s, "b" + std::to_string(i), prompt(11, 20 + i), 22));
    model.hold = false;
    for (int i = 0; i < 6; ++i) {
      Result r = collect(*streams[i]);
      EXPECT_EQ(r.ids, reference(prompt(11, 20 + i), true, 22)) << "request " << i;
      EXPECT_NE(r.finish.type, FinishReason::Type::kAbort) << r.finish.message;
    }
    EXPECT_TRUE(s.flush_cache());
    EXPECT_GT(s.stats().num_retractions, 0) << "page_size " << page_size;
    EXPECT_GT(s.stats().jump_forward_tokens, 0);
    EXPECT_EQ(s.stats().free_pages, pages);
  }
}

// The mask workers: a job over n rows runs as slices that cover every row once, on several
// threads when the batch is large enough, and a slice's error reaches wait().
TEST(SchedulerJumpForward, MaskWorkersSplitRowsAndRethrow) {
  SideWorkers workers(3, 2);
  for (size_t n : {0u, 1u, 3u, 4u, 10u, 33u}) {
    std::vector<int> seen(n, 0);
    std::mutex mu;
    std::set<std::thread::id> threads;
    workers.start(n, [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) ++seen[i];
      std::lock_guard<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
    });
    workers.wait();
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), static_cast<std::ptrdiff_t>(n)) << n;
    EXPECT_EQ(threads.size(), std::min<size_t>(3, std::max<size_t>(1, n / 2))) << n;
    EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  }
  workers.start(8, [](size_t begin, size_t) {
    if (begin > 0) throw std::runtime_error("mask failed");
  });
  EXPECT_THROW(workers.wait(), std::runtime_error);
  workers.start(8, [](size_t, size_t) {});
  EXPECT_NO_THROW(workers.wait());
}

// share(): every row runs once, on the caller and the helpers together, a row's error reaches the
// caller after every row ran, and a share right after another (late helpers still finishing
// theirs) is safe.
TEST(SchedulerJumpForward, SharedRowsRunOnceWithTheCallerTakingPart) {
  SideWorkers workers(3, 1);
  for (size_t n : {0u, 1u, 2u, 7u, 32u, 100u}) {
    std::vector<std::atomic<int>> seen(n);
    std::mutex mu;
    std::set<std::thread::id> threads;
    workers.share(n, 3, [&](size_t i) {
      seen[i].fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard<std::mutex> lock(mu);
      threads.insert(std::this_thread::get_id());
    });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << n << " row " << i;
    if (n >= 32) {  // rows of 200 us: the caller and some helper each take some
      EXPECT_EQ(threads.count(std::this_thread::get_id()), 1u) << n;
      EXPECT_GT(threads.size(), 1u) << n;
    }
  }
  std::atomic<int> ran{0};
  EXPECT_THROW(workers.share(16, 3,
                             [&](size_t i) {
                               ran.fetch_add(1);
                               if (i == 5) throw std::runtime_error("grammar failed");
                             }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 16);
  for (int round = 0; round < 50; ++round) {  // helpers of the last round may still be waking
    std::atomic<int> rows{0};
    workers.share(4, 3, [&](size_t) { rows.fetch_add(1); });
    EXPECT_EQ(rows.load(), 4);
  }
  workers.wait();
}

// With SABLE_GRAMMAR_SHARE=1 the grammar steps of a large constrained batch (accepting the sampled
// tokens, asking for jumps) are shared between the scheduler thread and the grammar workers; every
// output still spells the whole pattern and ends at EOS. Off (the default), one thread runs them.
class ThreadRecordingMatcher : public PatternMatcher {
 public:
  ThreadRecordingMatcher(std::shared_ptr<std::mutex> mu,
                         std::shared_ptr<std::set<std::thread::id>> threads)
      : PatternMatcher(kPattern), mu_(std::move(mu)), threads_(std::move(threads)) {}
  bool accept_token(int32_t token) override {
    std::this_thread::sleep_for(std::chrono::microseconds(100));  // a step's rows outlast a wake
    {
      std::lock_guard<std::mutex> lock(*mu_);
      threads_->insert(std::this_thread::get_id());
    }
    return PatternMatcher::accept_token(token);
  }

 private:
  std::shared_ptr<std::mutex> mu_;
  std::shared_ptr<std::set<std::thread::id>> threads_;
};

// The distinct threads that ran the grammar steps of 32 constrained requests decoding together.
size_t grammar_threads_of_a_batch(bool share) {
  if (share) setenv("SABLE_GRAMMAR_SHARE", "1", 1);
  FakeModel model(4096, 1);
  model.hold = true;  // the requests decode together
  Scheduler s(jump_options(4096, 1, false), model);
  unsetenv("SABLE_GRAMMAR_SHARE");
  auto mu = std::make_shared<std::mutex>();
  auto threads = std::make_shared<std::set<std::thread::id>>();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 32; ++i)
    streams.push_back(submit_with(s, "s" + std::to_string(i), prompt(9, i), 100,
                                  std::make_unique<ThreadRecordingMatcher>(mu, threads)));
  model.hold = false;
  for (auto& stream : streams) {
    const Result r = collect(*stream);
    EXPECT_EQ(spell(r.ids).size(), kPattern.size()) << "share " << share;
    EXPECT_EQ(r.finish.type, FinishReason::Type::kStop) << "share " << share;
  }
  EXPECT_TRUE(s.flush_cache());
  EXPECT_EQ(s.stats().free_pages, 4096);
  std::lock_guard<std::mutex> lock(*mu);
  return threads->size();
}

TEST(SchedulerJumpForward, GrammarStepsOfALargeBatchAreSharedWhenAsked) {
  EXPECT_GT(grammar_threads_of_a_batch(true), 1u) << "every grammar step ran on one thread";
  EXPECT_EQ(grammar_threads_of_a_batch(false), 1u);
}

// A backend whose forward returns at the launch (CUDA with device logits) gets the step's masks
// handed to the workers after it: waking them, which can preempt the scheduler thread, would
// delay the device. No mask fills while such a forward runs; a forward that computes before
// returning has them filled meanwhile. Either way every mask is ready for sampling.
class LaunchingModel : public FakeModel {
 public:
  LaunchingModel(int64_t pages, int32_t page_size, bool at_launch)
      : FakeModel(pages, page_size), at_launch_(at_launch) {}
  bool forward_returns_at_launch(std::span<const Sequence>) const override { return at_launch_; }
  Logits forward(std::span<const Sequence> seqs) override {
    const int before = fills->load();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // time for a started worker
    if (fills->load() != before) ++forwards_with_fills;
    return FakeModel::forward(seqs);
  }
  std::shared_ptr<std::atomic<int>> fills = std::make_shared<std::atomic<int>>(0);
  int forwards_with_fills = 0;  // scheduler thread only: read once the request finished

 private:
  bool at_launch_;
};

class CountingMatcher : public PatternMatcher {
 public:
  explicit CountingMatcher(std::shared_ptr<std::atomic<int>> fills)
      : PatternMatcher(kPattern), fills_(std::move(fills)) {}
  void fill_bitmask(std::span<uint32_t> mask) override {
    fills_->fetch_add(1);
    PatternMatcher::fill_bitmask(mask);
  }

 private:
  std::shared_ptr<std::atomic<int>> fills_;
};

TEST(SchedulerJumpForward, MasksOfALaunchingBackendAreStartedAfterTheLaunch) {
  for (bool at_launch : {true, false}) {
    LaunchingModel model(256, 1, at_launch);
    Scheduler s(jump_options(256, 1, false), model);
    const Result res = collect(
        *submit_with(s, "m", prompt(9, 3), 100, std::make_unique<CountingMatcher>(model.fills)));
    EXPECT_EQ(res.ids, reference(prompt(9, 3), true, 100)) << "at_launch " << at_launch;
    ASSERT_TRUE(s.flush_cache());
    EXPECT_EQ(model.fills->load(), model.forwards.load()) << "one mask per step";
    if (at_launch) {
      EXPECT_EQ(model.forwards_with_fills, 0);
    } else {
      EXPECT_GT(model.forwards_with_fills, 0);
    }
  }
}

// A backend that replays decode graphs runs every step in which a request jumps eagerly for the
// whole batch, so jumps whose forced tokens are few against the running rows are decoded instead
// (kJumpCostPerRow, bench/NOTES.md v10). Alone, a request jumps as on any backend; sixteen together
// jump fewer tokens than without graphs, and every output still spells the whole pattern.
class GraphReplayingModel : public FakeModel {
 public:
  using FakeModel::FakeModel;
  bool replays_decode_graphs() const override { return true; }
};

TEST(SchedulerJumpForward, GraphBackendsDecodeShortJumpsOfLargeBatches) {
  {
    GraphReplayingModel model(256, 1);
    Scheduler s(jump_options(256, 1, false), model);
    Result r = collect(*submit_constrained(s, "one", prompt(9, 3), 100));
    EXPECT_EQ(r.ids, reference(prompt(9, 3), true, 100)) << "one row: every jump is kept";
  }
  std::map<bool, int64_t> jumped;
  for (bool graphs : {false, true}) {
    std::unique_ptr<FakeModel> model = graphs ? std::make_unique<GraphReplayingModel>(2048, 1)
                                              : std::make_unique<FakeModel>(2048, 1);
    Scheduler s(jump_options(2048, 1, false), *model);
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < 16; ++i)
      streams.push_back(submit_constrained(s, "r" + std::to_string(i), prompt(9, i), 100));
    for (auto& stream : streams) {
      const Result r = collect(*stream);
      EXPECT_EQ(spell(r.ids).size(), kPattern.size()) << "graphs " << graphs;
      EXPECT_EQ(r.finish.type, FinishReason::Type::kStop);
    }
    ASSERT_TRUE(s.flush_cache());
    jumped[graphs] = s.stats().jump_forward_tokens;
    EXPECT_EQ(s.stats().free_pages, 2048);
  }
  EXPECT_GT(jumped[false], 0);
  EXPECT_LT(jumped[true], jumped[false]);
}
