// The scheduler tests' model and helpers: a fake model whose logits are a hash of the sequence it
// reads back THROUGH ITS KV PAGES (a wrong page, shared when it should not be, overwritten or freed
// too early, changes the output), a naive greedy reference, and request/stream helpers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "core/scheduler/scheduler.h"

namespace sable::scheduler::fake {

using sable::sampling::SamplingParams;

inline constexpr int32_t kVocab = 64;

inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline void fake_logits(std::span<const int32_t> seq, float* out) {
  uint64_t h = 17;
  for (int32_t t : seq) h = mix(h ^ static_cast<uint64_t>(t));
  for (int32_t v = 0; v < kVocab; ++v) out[v] = static_cast<float>(mix(h * 131 + v) >> 40) / 1e6f;
}

class FakeModel : public ModelBackend {
 public:
  FakeModel(int64_t num_pages, int32_t page_size) : ps_(page_size), kv_(num_pages * page_size, -1) {}
  Logits forward(std::span<const Sequence> seqs) override {
    forwards.fetch_add(1);
    while (hold.load()) std::this_thread::yield();
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    Logits out;
    out.vocab = kVocab;
    std::set<int32_t> used;
    for (const auto& s : seqs) {
      const int64_t len = s.num_cached + static_cast<int64_t>(s.new_tokens.size());
      if (static_cast<int64_t>(s.pages.size()) * ps_ < len) throw std::invalid_argument("few pages");
      for (int32_t p : s.pages) {
        if (!used.insert(p).second && false) throw std::invalid_argument("dup");
      }
      for (size_t i = 0; i < s.new_tokens.size(); ++i) {
        const int64_t pos = s.num_cached + static_cast<int64_t>(i);
        kv_.at(s.pages[pos / ps_] * ps_ + pos % ps_) = s.new_tokens[i];
      }
      std::vector<int32_t> seq(len);
      for (int64_t pos = 0; pos < len; ++pos) seq[pos] = kv_.at(s.pages[pos / ps_] * ps_ + pos % ps_);
      const int64_t first = s.all_logits ? s.num_cached : len - 1;
      for (int64_t pos = first; pos < len; ++pos) {
        out.data.resize((out.rows + 1) * kVocab);
        fake_logits(std::span<const int32_t>(seq).first(pos + 1), out.data.data() + out.rows * kVocab);
        ++out.rows;
      }
    }
    return out;
  }
  int delay_ms = 0;
  // While set, every forward waits: a test submits several requests before the first step runs,
  // so that they meet in one batch however the threads are scheduled.
  std::atomic<bool> hold{false};
  std::atomic<int> forwards{0};  // forwards entered

 private:
  int32_t ps_;
  std::vector<int32_t> kv_;
};

inline std::vector<int32_t> reference(std::vector<int32_t> seq, int n) {
  std::vector<int32_t> out;
  float l[kVocab];
  for (int i = 0; i < n; ++i) {
    fake_logits(seq, l);
    const int32_t t = static_cast<int32_t>(std::max_element(l, l + kVocab) - l);
    out.push_back(t);
    seq.push_back(t);
  }
  return out;
}

inline std::vector<int32_t> prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(static_cast<int32_t>(mix(salt * 1000 + i) % kVocab));
  return p;
}

struct Result {
  std::vector<int32_t> ids;
  std::string text;
  FinishReason finish;
  StreamChunk last;
  std::vector<PositionLogprobs> input_lp, output_lp;
};

inline Result collect(RequestStream& s) {
  Result r;
  while (auto c = s.next()) {
    r.ids.insert(r.ids.end(), c->token_ids.begin(), c->token_ids.end());
    r.text += c->text;
    for (auto& l : c->input_logprobs) r.input_lp.push_back(l);
    for (auto& l : c->output_logprobs) r.output_lp.push_back(l);
    if (c->finish) r.finish = *c->finish;
    r.last = *c;
  }
  return r;
}

inline std::shared_ptr<RequestStream> submit(Scheduler& s, const std::string& rid,
                                             std::vector<int32_t> p, int max_new,
                                             SamplingParams params = {}) {
  Request r;
  r.rid = rid;
  r.input_ids = std::move(p);
  params.temperature = params.temperature == 1.0 ? 0.0 : params.temperature;
  params.max_new_tokens = max_new;
  r.params = params;
  r.stream = std::make_shared<RequestStream>();
  auto stream = r.stream;
  s.submit(std::move(r));
  return stream;
}

inline SchedulerOptions options(int64_t pages, int32_t ps = 1) {
  SchedulerOptions o;
  o.num_pages = pages;
  o.page_size = ps;
  o.vocab_size = kVocab;
  o.context_length = 4096;
  return o;
}

}  // namespace sable::scheduler::fake
