// Host time the scheduler spends per step, with the model taken out: the backend returns at once
// (or after a simulated forward of forward_us) and "samples on the device" by handing back a
// fixed token, so what is timed is admission, radix cache and page bookkeeping, batch building,
// stop checks and streaming. On a GPU this time is added to every step unless it overlaps the
// device's work, so it bounds decode throughput at large batches (bench/NOTES.md, "Scheduler host
// overhead").
// With grammar=json every request is constrained by a JSON schema through the built `automaton`
// plugin and the tokenizer at tokenizer_dir (the vocabulary sets the mask size): the backend then
// samples a pseudo-random token the request's mask allows, so the time includes mask filling (on
// the mask workers, overlapped with the forward) and jump-forward. The gap measured is from the
// end of one forward to the start of the next: what the host adds on the critical path.
// device=async models the CUDA runner: forward returns once the step is launched, the simulated
// device computes for forward_us from the launch, sampling waits for it (the stream sync), and the
// backend replays decode graphs (jump-forward's batch rule). The gap is then the device's idle
// time, from the end of its forward to the next launch, the bench's own sampling taken out.
//   usage: sable_bench_scheduler [requests=128] [input=4096] [output=256] [page_size=16]
//                                [grammar=none|json] [forward_us=0] [tokenizer_dir]
//                                [jump_forward=1] [device=sync|async]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "core/grammar/grammar_backend.h"
#include "core/plugin/registry.h"
#include "core/scheduler/scheduler.h"
#include "core/tokenizer/tokenizer.h"

using namespace sable::scheduler;
using Clock = std::chrono::steady_clock;

namespace {

// The JSON schema of bench/grammar/e2e_throughput.py: forced keys between free values.
constexpr const char* kSchema = R"({"type": "object", "properties": {
  "title": {"type": "string", "maxLength": 40},
  "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
  "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4},
  "notes": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 8}},
  "required": ["title", "year", "tags", "notes"], "additionalProperties": false,
  "x-sable": {"property_order": "declared"}})";

class InstantBackend : public ModelBackend {
 public:
  InstantBackend(int32_t vocab, int64_t forward_us, bool async)
      : vocab_(vocab), forward_us_(forward_us), async_(async) {}
  Logits forward(std::span<const Sequence> seqs) override {
    const auto now = Clock::now();
    // Decode steps: every sequence continues its KV by one token or a jump's few.
    bool decode = true;
    for (const auto& s : seqs) decode &= s.num_cached > 0 && s.new_tokens.size() <= 65;
    if (decode && last_decode_ && last_.time_since_epoch().count() != 0) {
      // The bench's own sampling stands for the device's: it is not host time.
      gaps_us.push_back(std::chrono::duration<double, std::micro>(now - last_).count() - sample_us);
      batch_sizes.push_back(static_cast<int64_t>(seqs.size()));
    }
    if (decode) ++decode_steps;
    last_decode_ = decode;
    sample_us = 0;
    if (async_) {
      device_end_ = now + std::chrono::microseconds(forward_us_);
    } else {
      spin_until(now + std::chrono::microseconds(forward_us_));
      last_ = Clock::now();
    }
    Logits out;
    out.vocab = vocab_;
    out.on_device = true;
    for (const auto& s : seqs) out.rows += s.all_logits ? static_cast<int64_t>(s.new_tokens.size()) : 1;
    return out;
  }
  bool replays_decode_graphs() const override { return async_; }
  bool forward_returns_at_launch(std::span<const Sequence>) const override { return async_; }
  void sample_on_device(std::span<const int64_t>, std::span<const SableSamplingRow> rows,
                        std::span<SableSampleResult> results) override {
    if (async_) {  // the stream sync: the device ends the forward, then idles until the next launch
      spin_until(device_end_);
      last_ = std::max(device_end_, last_);
    }
    const auto start = Clock::now();
    for (size_t i = 0; i < results.size(); ++i) {
      results[i] = SableSampleResult{};
      results[i].token = rows[i].grammar_mask ? pick(rows[i]) : 7;
    }
    sample_us += std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  }
  std::vector<double> gaps_us;  // host time between consecutive decode forwards
  std::vector<int64_t> batch_sizes;
  int64_t decode_steps = 0;

 private:
  // A pseudo-random allowed token: the first allowed one from a random place on, wrapping; EOS
  // (the highest ids of the vocabulary) only when nothing else is allowed, so outputs are long.
  int32_t pick(const SableSamplingRow& r) {
    rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
    const int32_t from = static_cast<int32_t>((rng_ >> 33) % static_cast<uint64_t>(vocab_));
    int32_t first = -1;
    for (int32_t k = 0; k < vocab_; ++k) {
      const int32_t id = (from + k) % vocab_;
      if (!(r.grammar_mask[id >> 5] >> (id & 31) & 1)) continue;
      if (id < eos_floor_) return id;
      if (first < 0) first = id;
    }
    return first < 0 ? 0 : first;
  }

 public:
  int32_t eos_floor_ = INT32_MAX;  // ids from here on are EOS / special (picked last)
  double sample_us = 0;            // time in sample_on_device since the last forward (not host)

 private:
  static void spin_until(Clock::time_point t) {
    while (Clock::now() < t) {
    }
  }

  int32_t vocab_;
  int64_t forward_us_;
  bool async_;
  Clock::time_point device_end_{};
  uint64_t rng_ = 42;
  Clock::time_point last_{};
  bool last_decode_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 128;
  const int input = argc > 2 ? std::atoi(argv[2]) : 4096;
  const int output = argc > 3 ? std::atoi(argv[3]) : 256;
  const int page_size = argc > 4 ? std::atoi(argv[4]) : 16;
  const bool json = argc > 5 && std::strcmp(argv[5], "json") == 0;
  const int64_t forward_us = argc > 6 ? std::atoll(argv[6]) : 0;
  const std::string tokenizer_dir = argc > 7 ? argv[7] : "tests/golden/tokenizers/llama3";
  const bool jump = argc > 8 ? std::atoi(argv[8]) != 0 : true;
  const bool async = argc > 9 && std::strcmp(argv[9], "async") == 0;
  std::unique_ptr<sable::tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<sable::plugin::Registry> registry;
  std::unique_ptr<sable::grammar::GrammarBackend> grammar;
  int32_t vocab = 64;
  if (json) {
    tokenizer = sable::tokenizer::Tokenizer::load(tokenizer_dir);
    vocab = tokenizer->vocab_size();
    sable::plugin::DiscoveryOptions discovery;
    discovery.dirs = sable::plugin::default_plugin_dirs();
    registry = sable::plugin::Registry::discover(discovery);
    grammar = sable::grammar::GrammarBackend::create(*registry, "automaton", *tokenizer, vocab);
  }
  SchedulerOptions o;
  o.page_size = page_size;
  o.num_pages = (int64_t(requests) * (input + output) + page_size - 1) / page_size + requests;
  o.vocab_size = vocab;
  o.context_length = input + output + 8;
  o.max_running_requests = requests;
  o.chunked_prefill_size = 8192;
  o.disable_jump_forward = !jump;
  InstantBackend backend(vocab, forward_us, async);
  if (json) {
    for (int32_t id : tokenizer->eos_ids()) backend.eos_floor_ = std::min(backend.eos_floor_, id);
  }
  // With a grammar, a first untimed round warms the masks of the states a walk visits (they are
  // computed once per grammar and kept), as a server that has seen the schema before.
  auto t0 = Clock::now();
  int64_t generated = 0, jumped = 0, decode_steps = 0;
  {
    Scheduler s(o, backend);
    for (int round = json ? 0 : 1; round < 2; ++round) {
      t0 = Clock::now();
      backend.gaps_us.clear();
      backend.batch_sizes.clear();
      const int64_t steps_before = backend.decode_steps;
      s.flush_cache();
      const int64_t jumped_before = s.stats().jump_forward_tokens;
      std::vector<std::shared_ptr<RequestStream>> streams;
      for (int i = 0; i < requests; ++i) {
        Request r;
        r.rid = "r" + std::to_string(round) + "-" + std::to_string(i);
        r.input_ids.resize(input);
        for (int j = 0; j < input; ++j)  // no shared prefix
          r.input_ids[j] = (i * 7919 + j * 31 + round * 17) % 60 + 1;
        r.params.temperature = 0;
        r.params.max_new_tokens = output;
        if (json) {
          r.params.json_schema = kSchema;
          r.grammar = grammar->matcher(r.params);
          r.eos_ids = tokenizer->eos_ids();
        } else {
          r.params.ignore_eos = true;
        }
        r.stream = std::make_shared<RequestStream>();
        streams.push_back(r.stream);
        s.submit(std::move(r));
      }
      generated = 0;
      for (auto& st : streams) {
        while (auto c = st->next()) {
          generated += static_cast<int64_t>(c->token_ids.size());
          if (c->finish && c->finish->type == FinishReason::Type::kAbort) {
            std::fprintf(stderr, "a request was aborted: %s\n", c->finish->message.c_str());
            return 1;
          }
          if (c->finish && !json && c->finish->type != FinishReason::Type::kLength) {
            std::fprintf(stderr, "a request ended early\n");
            return 1;
          }
        }
      }
      s.flush_cache();  // publishes the last step's counters
      jumped = s.stats().jump_forward_tokens - jumped_before;
      decode_steps = backend.decode_steps - steps_before;
    }
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  auto& g = backend.gaps_us;
  if (g.empty()) {
    std::printf("no full decode steps observed\n");
    return 1;
  }
  std::vector<double> sorted = g;
  std::sort(sorted.begin(), sorted.end());
  const int64_t bmax = *std::max_element(backend.batch_sizes.begin(), backend.batch_sizes.end());
  double sum = 0;
  for (double x : g) sum += x;
  if (!json && generated != int64_t(requests) * output) {
    std::fprintf(stderr, "generated %ld tokens, expected %ld\n", static_cast<long>(generated),
                 static_cast<long>(int64_t(requests) * output));
    return 1;
  }
  std::printf("scheduler requests=%d input=%d output=%d page=%d grammar=%s forward=%ldus "
              "jump_forward=%d device=%s: total %.2f s, %ld tokens (%ld jumped) in %ld decode "
              "steps at batch <= %ld, host time per step mean %.1f us, p50 %.1f us, p99 %.1f us "
              "(%.2f us per running request)\n",
              requests, input, output, page_size, json ? "json" : "none",
              static_cast<long>(forward_us), jump ? 1 : 0, async ? "async" : "sync", total_s,
              static_cast<long>(generated),
              static_cast<long>(jumped), static_cast<long>(decode_steps),
              static_cast<long>(bmax), sum / g.size(), sorted[sorted.size() / 2],
              sorted[sorted.size() * 99 / 100], sum / g.size() / bmax);
  return 0;
}
