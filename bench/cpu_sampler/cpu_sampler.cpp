// The built-in CPU sampler alone (Sampler::sample on one thread): milliseconds a row over a
// Qwen-sized vocabulary for rows of three spreads (normal logits, sd 0.05 = a random-weight
// model's flat rows, 2 and 4) and six parameter sets, best of 5 calls of 16 rows.
//   usage: sable_bench_cpu_sampler [vocab=151936] [rows=16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/sampling/sampler.h"

int main(int argc, char** argv) {
  const int64_t vocab = argc > 1 ? std::atoll(argv[1]) : 151936;
  const int rows = argc > 2 ? std::atoi(argv[2]) : 16;
  struct Params {
    const char* name;
    float temperature, top_p;
    int top_k, top_logprobs;
  };
  const Params params[] = {
      {"greedy", 0.0f, 1.0f, -1, 0},          {"greedy + top-5 logprobs", 0.0f, 1.0f, -1, 5},
      {"temperature 0.8", 0.8f, 1.0f, -1, 0}, {"top_k 50", 0.8f, 1.0f, 50, 0},
      {"top_p 0.9", 0.8f, 0.9f, -1, 0},       {"top_p 0.95 + top_k 40", 0.8f, 0.95f, 40, 0}};
  for (const float sd : {0.05f, 2.0f, 4.0f}) {
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, sd);
    std::vector<float> logits(static_cast<size_t>(vocab * rows));
    for (float& x : logits) x = normal(rng);
    for (const Params& p : params) {
      std::vector<SableSamplingRow> rs(static_cast<size_t>(rows));
      std::vector<SableSampleResult> res(static_cast<size_t>(rows));
      std::vector<int32_t> top_ids(static_cast<size_t>(rows * 8));
      std::vector<float> top_lps(top_ids.size());
      for (int r = 0; r < rows; ++r) {
        rs[r] = SableSamplingRow{};
        rs[r].struct_size = sizeof(SableSamplingRow);
        rs[r].temperature = p.temperature;
        rs[r].top_p = p.top_p;
        rs[r].top_k = p.top_k;
        rs[r].repetition_penalty = 1.0f;
        rs[r].seed = 7;
        rs[r].want_logprob = p.top_logprobs > 0 ? 1 : 0;
        rs[r].top_logprobs_num = p.top_logprobs;
        res[r] = SableSampleResult{};
        res[r].struct_size = sizeof(SableSampleResult);
        res[r].top_ids = top_ids.data() + r * 8;
        res[r].top_logprobs = top_lps.data() + r * 8;
      }
      sable::sampling::Sampler sampler;
      double best = 1e30;
      for (int it = 0; it < 5; ++it) {
        std::vector<float> copy = logits;  // the sampler edits its rows
        const auto t0 = std::chrono::steady_clock::now();
        sampler.sample(copy.data(), vocab, rs, res);
        best = std::min(
            best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count());
        for (auto& r : rs) ++r.step;
      }
      std::printf("cpu sampler sd %.2f %-24s %7.3f ms/row (token %d)\n", sd, p.name, best / rows,
                  res[0].token);
    }
  }
  return 0;
}
