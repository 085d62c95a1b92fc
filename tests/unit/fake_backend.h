// A scripted Backend for the server's tests and fuzzers: no model, the real qwen2_tok tokenizer
// (tests/golden), deterministic output. Needs SABLE_TEST_DATA_DIR (the tests/golden folder).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/tokenizer/tokenizer.h"
#include "server/backend.h"

namespace sable::server {

inline const tokenizer::Tokenizer& qwen() {
  static auto tok = tokenizer::Tokenizer::load(SABLE_TEST_DATA_DIR "/models/qwen2_tok");
  return *tok;
}

// A backend that "generates" the tokens 1000, 1001, ... one per delta, every token_delay (2 ms), up
// to max_new_tokens, then finishes with length. Counts live and aborted generations.
class FakeBackend : public Backend {
 public:
  std::chrono::milliseconds token_delay{2};
  int32_t max_tokens = INT32_MAX;  // caps max_new_tokens (the fuzzer keeps inputs fast)
  std::atomic<int> live{0};
  std::atomic<int> aborted{0};
  std::atomic<int64_t> queued{0};

  class Gen : public Generation {
   public:
    Gen(FakeBackend& b, GenerateInput in) : b_(b), in_(std::move(in)) { ++b_.live; }
    ~Gen() override {
      if (!done_) ++b_.aborted;
      --b_.live;
    }
    std::optional<Delta> next(std::chrono::milliseconds) override {
      if (done_) return std::nullopt;
      if (b_.token_delay.count() > 0) std::this_thread::sleep_for(b_.token_delay);
      const int32_t limit = std::min(in_.params.max_new_tokens.value_or(8), b_.max_tokens);
      Delta d;
      d.prompt_tokens = static_cast<int64_t>(in_.input_ids.size());
      if (produced_ < limit) {
        const int32_t id = 1000 + produced_++;
        d.token_ids = {id};
        d.text = qwen().decode(d.token_ids, true);
      }
      d.completion_tokens = produced_;
      if (produced_ >= limit) {
        d.finish = Finish{};
        d.finish->type = Finish::Type::kLength;
        d.finish->length = produced_;
        done_ = true;
      }
      return d;
    }
    bool done() const override { return done_; }
    // Output is always ready here: next() makes it.
    void set_notify(std::function<void(bool)> notify) override {
      if (notify) notify(false);
    }

   private:
    FakeBackend& b_;
    GenerateInput in_;
    int32_t produced_ = 0;
    bool done_ = false;
  };

  const tokenizer::Tokenizer& tokenizer() const override { return qwen(); }
  ModelFacts facts() const override {
    ModelFacts f;
    f.model_path = "/models/fake";
    f.tokenizer_path = "/models/fake";
    f.context_length = 64;
    f.vocab_size = 151936;
    f.max_total_num_tokens = 1024;
    return f;
  }
  std::unique_ptr<Generation> submit(GenerateInput in) override {
    return std::make_unique<Gen>(*this, std::move(in));
  }
  void abort(const std::string&) override {}
  void abort_all(const std::string&) override {}
  bool flush_cache() override { return live == 0; }
  WeightUpdateResult update_weights_from_disk(const std::string& path) override {
    if (path == "/models/fake") return {true, "Succeeded to update model weights.", 0};
    return {false, "Failed to update weights: no checkpoint at " + path, 0};
  }
  BackendStats stats() const override {
    BackendStats s;
    s.running = live;
    s.queued = queued;
    return s;
  }
};

// The expected text of `n` fake tokens.
inline std::string fake_text(int n) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(1000 + i);
  return qwen().decode(ids, true);
}

}  // namespace sable::server
