// The device sampler alone (CudaSampler::sample: the launch, the parameters up and the tokens
// back): microseconds a call over a Qwen-sized vocabulary, for rows of three shapes (flat: a
// random-weight model's; spread: normal logits; peaked: a few tokens far above the rest, as a
// trained model's) and six parameter sets (cut_kernels.cu cuts and draws the sampled rows).
//   usage: sable_gpu_sampler_bench [rows=1,64] [vocab=151936] [calls=200]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/sampling/cuda/cuda_sampler.h"

namespace {

void check(cudaError_t e) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error: %s\n", cudaGetErrorString(e));
    std::exit(1);
  }
}

struct Params {
  const char* name;
  float temperature, top_p;
  int top_k;
  int top_n = 0;  // top log-probabilities a row
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> batches;
  std::istringstream in(argc > 1 ? argv[1] : "1,64");
  for (std::string b; std::getline(in, b, ',');) batches.push_back(std::atoi(b.c_str()));
  const int64_t vocab = argc > 2 ? std::atoll(argv[2]) : 151936;
  const int calls = argc > 3 ? std::atoi(argv[3]) : 200;
  const Params params[] = {{"greedy", 0.0f, 1.0f, -1},
                           {"top_p 0.9", 0.8f, 0.9f, -1},
                           {"top_k 50 top_p 0.9", 0.8f, 0.9f, 50},
                           {"top_p 0.95 T1", 1.0f, 0.95f, -1},
                           {"T 0.8 alone", 0.8f, 1.0f, -1},
                           {"top_k 20 top_p 0.8", 0.7f, 0.8f, 20},
                           {"greedy top-5 logprobs", 0.0f, 1.0f, -1, 5},
                           {"greedy top-20 logprobs", 0.0f, 1.0f, -1, 20}};
  sable::sampling::CudaSampler sampler;
  for (const int rows : batches) {
    for (const char* shape : {"flat", "spread", "peaked"}) {
      std::mt19937 rng(1);
      const float sd = shape[0] == 'f' ? 0.05f : 2.0f;
      std::normal_distribution<float> normal(0.0f, sd);
      std::vector<float> logits(static_cast<size_t>(rows * vocab));
      for (float& x : logits) x = normal(rng);
      if (shape[0] == 'p') {  // twenty tokens a row 8 to 14 above the rest
        std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
        for (int r = 0; r < rows; ++r)
          for (int k = 0; k < 20; ++k) logits[r * vocab + pick(rng)] += 8.0f + 0.3f * k;
      }
      float* dev = nullptr;
      check(cudaMalloc(&dev, logits.size() * sizeof(float)));
      check(cudaMemcpy(dev, logits.data(), logits.size() * sizeof(float), cudaMemcpyHostToDevice));
      for (const Params& p : params) {
        std::vector<SableSamplingRow> rs(static_cast<size_t>(rows));
        std::vector<SableSampleResult> res(static_cast<size_t>(rows));
        for (int r = 0; r < rows; ++r) {
          rs[r] = SableSamplingRow{};
          rs[r].struct_size = sizeof(SableSamplingRow);
          rs[r].temperature = p.temperature;
          rs[r].top_p = p.top_p;
          rs[r].top_k = p.top_k;
          rs[r].top_logprobs_num = p.top_n;
          rs[r].repetition_penalty = 1.0f;
          rs[r].seed = 1 + r;
          res[r] = SableSampleResult{};
          res[r].struct_size = sizeof(SableSampleResult);
        }
        for (int i = 0; i < 5; ++i) sampler.sample(dev, vocab, vocab, rs, res, nullptr);
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < calls; ++i) {
          for (auto& r : rs) r.step = static_cast<uint64_t>(i);
          sampler.sample(dev, vocab, vocab, rs, res, nullptr);
        }
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count() /
            calls;
        std::printf("sampler rows=%d %-6s %-20s %8.1f us/call (token %d)\n", rows, shape, p.name,
                    us, res[0].token);
      }
      check(cudaFree(dev));
    }
  }
  return 0;
}
