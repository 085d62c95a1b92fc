// Host time the scheduler spends per step, with the model taken out: the backend returns at once
// and "samples on the device" by handing back a fixed token, so what is timed is admission, radix
// cache and page bookkeeping, batch building, stop checks and streaming. On a GPU this time is
// added to every step unless it overlaps the device's work, so it bounds decode throughput at
// large batches (bench/NOTES.md, "Scheduler host overhead").
//   usage: sable_bench_scheduler [requests=128] [input=4096] [output=256] [page_size=16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/scheduler/scheduler.h"

using namespace sable::scheduler;
using Clock = std::chrono::steady_clock;

namespace {

class InstantBackend : public ModelBackend {
 public:
  Logits forward(std::span<const Sequence> seqs) override {
    const auto now = Clock::now();
    bool decode = true;
    for (const auto& s : seqs) decode &= s.new_tokens.size() == 1;
    if (decode && seqs.size() == last_size_ && last_.time_since_epoch().count() != 0) {
      gaps_us.push_back(std::chrono::duration<double, std::micro>(now - last_).count());
      batch_sizes.push_back(static_cast<int64_t>(seqs.size()));
    }
    last_size_ = seqs.size();
    Logits out;
    out.vocab = 64;
    out.on_device = true;
    for (const auto& s : seqs) out.rows += s.all_logits ? static_cast<int64_t>(s.new_tokens.size()) : 1;
    last_ = Clock::now();
    return out;
  }
  void sample_on_device(std::span<const int64_t>, std::span<const SableSamplingRow>,
                        std::span<SableSampleResult> results) override {
    for (auto& r : results) {
      r = SableSampleResult{};
      r.token = 7;
    }
  }
  std::vector<double> gaps_us;  // host time between consecutive decode forwards of equal size
  std::vector<int64_t> batch_sizes;

 private:
  Clock::time_point last_{};
  size_t last_size_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 128;
  const int input = argc > 2 ? std::atoi(argv[2]) : 4096;
  const int output = argc > 3 ? std::atoi(argv[3]) : 256;
  const int page_size = argc > 4 ? std::atoi(argv[4]) : 16;
  SchedulerOptions o;
  o.page_size = page_size;
  o.num_pages = (int64_t(requests) * (input + output) + page_size - 1) / page_size + requests;
  o.vocab_size = 64;
  o.context_length = input + output + 8;
  o.max_running_requests = requests;
  o.chunked_prefill_size = 8192;
  InstantBackend backend;
  auto t0 = Clock::now();
  int64_t generated = 0;
  {
    Scheduler s(o, backend);
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < requests; ++i) {
      Request r;
      r.rid = "r" + std::to_string(i);
      r.input_ids.resize(input);
      for (int j = 0; j < input; ++j) r.input_ids[j] = (i * 7919 + j * 31) % 60 + 1;  // no shared prefix
      r.params.temperature = 0;
      r.params.max_new_tokens = output;
      r.params.ignore_eos = true;
      r.stream = std::make_shared<RequestStream>();
      streams.push_back(r.stream);
      s.submit(std::move(r));
    }
    for (auto& st : streams) {
      int64_t tokens = 0;
      while (auto c = st->next()) {
        tokens += static_cast<int64_t>(c->token_ids.size());
        if (c->finish && c->finish->type != FinishReason::Type::kLength) {
          std::fprintf(stderr, "a request ended early: %s\n", c->finish->message.c_str());
          return 1;
        }
      }
      generated += tokens;
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
  if (generated != int64_t(requests) * output) {
    std::fprintf(stderr, "generated %ld tokens, expected %ld\n", static_cast<long>(generated),
                 static_cast<long>(int64_t(requests) * output));
    return 1;
  }
  std::printf("scheduler requests=%d input=%d output=%d page=%d: total %.2f s, %zu decode steps at "
              "batch <= %ld, host time per step mean %.1f us, p50 %.1f us, p99 %.1f us "
              "(%.2f us per running request)\n",
              requests, input, output, page_size, total_s, g.size(), static_cast<long>(bmax),
              sum / g.size(), sorted[sorted.size() / 2], sorted[sorted.size() * 99 / 100],
              sum / g.size() / bmax);
  return 0;
}
