// Decode speed on the GPU through the model runner: B sequences prefill `input` random tokens, then
// decode `output` tokens greedily (argmax on the device), CUDA graphs on. Prints tokens/s per
// sequence and in total, and the per-step time against the weight-bytes floor.
//   usage: sable_gpu_decode_bench MODEL_DIR [batch=1] [input=128] [output=256] [graphs=1]
// SABLE_PROFILE=prefill|decode brackets the timed prefill or decode steps with
// cudaProfilerStart/Stop, for `ncu --profile-from-start off` (scripts/gpu-bench.sh ncu items).
// SABLE_BENCH_LORA="DIR ..." loads those PEFT adapters (rank <= 16) and gives sequence b adapter
// b mod n in every step (issue 17: a LoRA step's kernels under ncu, without the server).
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/lora/lora_manager.h"
#include "core/lora/runner_base_model.h"
#include "core/plugin/registry.h"
#include "core/runner/device_memory.h"
#include "core/runner/model_runner.h"
#include "core/sampling/cuda/cuda_sampler.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [batch] [input] [output] [graphs]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int batch = argc > 2 ? std::atoi(argv[2]) : 1;
  const int input = argc > 3 ? std::atoi(argv[3]) : 128;
  const int output = argc > 4 ? std::atoi(argv[4]) : 256;
  const bool graphs = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  sable::plugin::DiscoveryOptions dopt;
  dopt.dirs = {sable::plugin::builtin_plugin_dir()};
  auto registry = sable::plugin::Registry::discover(dopt);
  sable::runner::RunnerOptions o;
  o.model_path = dir;
  o.device = "cuda";
  o.page_size = 16;
  o.max_total_tokens = int64_t(batch) * (input + output + 32);
  o.max_batch_tokens = std::max(std::max(input, batch), 256);
  o.max_seqs = std::max(batch, 8);
  o.cuda_graphs = graphs;
  o.registry = registry.get();
  auto t_load = std::chrono::steady_clock::now();
  auto runner = sable::runner::ModelRunner::create(o);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  const int32_t vocab = runner->info().vocab_size;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  const int64_t per_seq = runner->num_pages() / batch;
  std::vector<std::vector<int32_t>> pages(batch), prompt(batch), last(batch);
  for (int b = 0; b < batch; ++b) {
    pages[b].resize(per_seq);
    std::iota(pages[b].begin(), pages[b].end(), int32_t(b * per_seq));
    prompt[b].resize(input);
    for (auto& t : prompt[b]) t = tok(rng);
  }
  // LoRA (SABLE_BENCH_LORA): the adapters' manager as the engine makes it (engine_lora.cpp).
  std::unique_ptr<sable::runner::DeviceMemory> lora_memory;
  std::unique_ptr<sable::lora::LoraManager> lora;
  std::vector<int32_t> seq_adapter(batch, 0), seq_rows(batch, 1);
  if (const char* dirs = std::getenv("SABLE_BENCH_LORA"); dirs && *dirs) {
    sable::lora::LoraOptions lo;
    lo.max_loras_per_batch = 16;
    lo.max_lora_rank = 16;  // as the server bench (lora8b): --max-lora-rank 16
    lo.compute_dtype = runner->compute_dtype();
    lo.max_batch_tokens = o.max_batch_tokens;
    sable::lora::BaseModel base = sable::lora::runner_base_model(
        *runner, [&r = *runner](const std::string& name) { return r.weight_shape(name); });
    lora_memory = sable::runner::make_cuda_memory(0);
    lora = std::make_unique<sable::lora::LoraManager>(lo, std::move(base), *lora_memory);
    std::istringstream in(dirs);
    std::vector<int32_t> ids;
    for (std::string d; in >> d;) ids.push_back(lora->load("a" + std::to_string(ids.size()), d).id);
    for (int b = 0; b < batch; ++b) seq_adapter[b] = ids[b % ids.size()];
    std::printf("lora: %zu adapter(s), round robin over %d sequences\n", ids.size(), batch);
  }
  sable::sampling::CudaSampler sampler;
  std::vector<SableSamplingRow> rows(batch);
  // Greedy unless SABLE_BENCH_SAMPLING="temperature/top_p/top_k" (e.g. "0.8/0.9/-1"): the step
  // then includes the device sampler's cuts (compare the two for the sampler's cost).
  float temperature = 0.0f, top_p = 1.0f;
  int top_k = -1;
  if (const char* s = std::getenv("SABLE_BENCH_SAMPLING"); s && *s) {
    std::string spec(s);
    std::replace(spec.begin(), spec.end(), '/', ' ');
    std::istringstream in(spec);
    in >> temperature >> top_p >> top_k;
    std::printf("sampling: temperature %.2f top_p %.2f top_k %d\n", temperature, top_p, top_k);
  }
  for (size_t b = 0; b < rows.size(); ++b) {
    SableSamplingRow& r = rows[b];
    r = SableSamplingRow{};
    r.struct_size = sizeof(r);
    r.temperature = temperature;
    r.top_p = top_p;
    r.top_k = top_k;
    r.repetition_penalty = 1.0f;
    r.seed = 1 + b;
  }
  std::vector<SableSampleResult> res(batch);
  auto step = [&](int pos) {
    if (pos == 0) {  // prefill one sequence at a time (bounded activation memory), then sample
      for (int b = 0; b < batch; ++b) {
        sable::runner::ModelRunner::Sequence s{prompt[b], 0, pages[b], false};
        auto out = runner->forward(std::span(&s, 1), false, true);
        std::vector<SableSampleResult> one(1);
        sampler.sample(const_cast<float*>(out.device_logits), vocab, vocab,
                       std::span(rows.data(), 1), one, runner->stream());
        last[b] = {one[0].token};
      }
      return;
    }
    std::vector<sable::runner::ModelRunner::Sequence> seqs(batch);
    for (int b = 0; b < batch; ++b) {
      seqs[b].new_tokens = pos == 0 ? std::span<const int32_t>(prompt[b]) : std::span<const int32_t>(last[b]);
      seqs[b].num_cached = pos == 0 ? 0 : input + pos - 1;
      seqs[b].pages = pages[b];
    }
    const sable::ops::LoraBatch* lb = lora ? lora->prepare(seq_adapter, seq_rows) : nullptr;
    auto out = runner->forward(seqs, false, /*device_logits=*/true, lb);
    sampler.sample(const_cast<float*>(out.device_logits), vocab, vocab, rows, res, runner->stream());
    for (int b = 0; b < batch; ++b) last[b] = {res[b].token};
  };
  // Warm-up pass (captures the decode graph), then the timed run.
  step(0);
  for (int i = 1; i <= 3; ++i) step(i);
  cudaDeviceSynchronize();
  const char* profile_env = std::getenv("SABLE_PROFILE");
  const std::string profile = profile_env ? profile_env : "";
  auto t0 = std::chrono::steady_clock::now();
  if (profile == "prefill") cudaProfilerStart();
  step(0);
  cudaDeviceSynchronize();
  if (profile == "prefill") cudaProfilerStop();
  auto t1 = std::chrono::steady_clock::now();
  if (profile == "decode") cudaProfilerStart();
  for (int i = 1; i <= output; ++i) step(i);
  cudaDeviceSynchronize();
  if (profile == "decode") cudaProfilerStop();
  auto t2 = std::chrono::steady_clock::now();
  const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
  const double decode_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("decode %s batch=%d in=%d out=%d graphs=%d load=%.1fs prefill=%.1fms "
              "step=%.3fms tok/s/seq=%.1f tok/s=%.1f\n",
              dir.c_str(), batch, input, output, graphs ? 1 : 0, load_s, prefill_s * 1e3,
              decode_s / output * 1e3, output / decode_s, batch * output / decode_s);
  return 0;
}
