// CPU decode speed: tokens/s of greedy decode steps (argmax only) for 1 and N sequences, and of
// the prefill before them.
//
// Loads a checkpoint or GGUF file through the model runner (the real plugins, the CPU ops and the
// CPU attention backend), prefills each sequence with a fixed pseudo-random prompt (timed: one
// forward of batch x prompt tokens), then times `steps` decode forwards of the whole batch. Prints
// one line per batch size:
//   model=<path> batch=<B> prompt=<P> steps=<S> threads=<T> prefill_tok_s=<p> decode_tok_s=<x>
//   ms_per_step=<y> kernels=<table> blas=<OpenBLAS core> prefill_faults=<n> faults_per_step=<f>
//   prefill_cpu_tok_s=<p> decode_cpu_tok_s=<x>
// (the process's minor page faults during the prefill and per decode step: pages of fresh memory
// the kernel mapped, whether by a fault trap - tens of microseconds each on a sandboxed host - or
// all at once for a populated allocation, core/ops/host_pages.h; steady decode should add ~0),
// and the same rates per CPU-second of the whole process (user + system, all threads): on a
// machine shared with other work they drop the time other processes held the cores.
// Usage: sable_bench_cpu_decode --model PATH [--batch 1,8] [--prompt 32] [--steps 32]
//        [--threads N] [--dequantize] [--fp32-activations] [--plugin-dir DIR]...
#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qkernels.h"
#include "core/plugin/registry.h"
#include "core/runner/model_runner.h"

using sable::runner::ModelRunner;

namespace {

struct Timing {
  double prefill_s = 0, decode_s = 0;
  double prefill_cpu_s = 0, decode_cpu_s = 0;  // user + system CPU of the process
  long prefill_faults = 0, decode_faults = 0;  // minor page faults (fresh memory touched)
};

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * t.tv_usec; };
  return s(u.ru_utime) + s(u.ru_stime);
}

Timing run_batch(ModelRunner& runner, int32_t batch, int32_t prompt, int32_t steps) {
  const int32_t page = runner.page_size();
  const int32_t per_seq = (prompt + steps + page - 1) / page;
  std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(batch));
  std::vector<std::vector<int32_t>> pages(static_cast<size_t>(batch));
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> tok(0, runner.info().vocab_size - 1);
  for (int32_t b = 0; b < batch; ++b) {
    for (int32_t i = 0; i < prompt; ++i) tokens[b].push_back(tok(rng));
    for (int32_t p = 0; p < per_seq; ++p) pages[b].push_back(b * per_seq + p);
  }
  std::vector<ModelRunner::Sequence> seqs(static_cast<size_t>(batch));
  for (int32_t b = 0; b < batch; ++b) seqs[b] = {tokens[b], 0, pages[b], false};
  const long f0 = minor_faults();
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  auto out = runner.forward(seqs);  // prefill
  const auto start = std::chrono::steady_clock::now();
  const double c1 = cpu_seconds();
  const long f1 = minor_faults();
  for (int32_t s = 0; s < steps; ++s) {
    for (int32_t b = 0; b < batch; ++b) {
      const int32_t next = sable::runner::argmax(out.row(b));
      const int32_t cached = static_cast<int32_t>(tokens[b].size());
      tokens[b].push_back(next);
      seqs[b] = {std::span<const int32_t>(tokens[b]).subspan(static_cast<size_t>(cached)), cached,
                 pages[b], false};
    }
    out = runner.forward(seqs);
  }
  Timing t;
  t.prefill_s = std::chrono::duration<double>(start - t0).count();
  t.decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.prefill_cpu_s = c1 - c0;
  t.decode_cpu_s = cpu_seconds() - c1;
  t.prefill_faults = f1 - f0;
  t.decode_faults = minor_faults() - f1;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CPU decode speed of a checkpoint through the model runner"};
  std::string model;
  std::vector<int32_t> batches = {1, 8};
  int32_t prompt = 32, steps = 32, threads = 0;
  bool dequantize = false, fp32_activations = false;
  std::vector<std::string> plugin_dirs;
  app.add_option("--model", model, "checkpoint directory")->required();
  app.add_option("--batch", batches, "batch sizes")->delimiter(',');
  app.add_option("--prompt", prompt, "prompt tokens per sequence");
  app.add_option("--steps", steps, "timed decode steps");
  app.add_option("--plugin-dir", plugin_dirs, "extra plugin folders");
  app.add_option("--threads", threads, "CPU threads (0: the physical cores)");
  app.add_flag("--dequantize", dequantize, "convert packed weights to fp32 at load");
  app.add_flag("--fp32-activations", fp32_activations,
               "fp32 activations against quantized weights (default: int8, llama.cpp's scheme)");
  CLI11_PARSE(app, argc, argv);
  try {
    sable::plugin::DiscoveryOptions dopt;
    dopt.dirs = sable::plugin::default_plugin_dirs(plugin_dirs);
    dopt.dirs.push_back(SABLE_BENCH_PLUGIN_DIR);
    auto registry = sable::plugin::Registry::discover(dopt);
    int32_t max_batch = 1;
    for (int32_t b : batches) max_batch = std::max(max_batch, b);
    sable::runner::RunnerOptions opt;
    opt.model_path = model;
    opt.page_size = 16;
    opt.num_pages = static_cast<int64_t>(max_batch) * ((prompt + steps + 15) / 16);
    opt.context_length = prompt + steps + 1;
    opt.registry = registry.get();
    opt.cpu_threads = threads;
    opt.packed_weights = !dequantize;
    opt.int8_activations = !fp32_activations;
    auto runner = ModelRunner::create(opt);
    run_batch(*runner, 1, 8, 2);  // warm-up: page in the weights, grow the arena
    const std::string blas = [] {  // one token: "OpenBLAS Haswell" -> "OpenBLAS_Haswell"
      std::string n = sable::ops::cpu::blas_name();
      std::replace(n.begin(), n.end(), ' ', '_');
      return n;
    }();
    for (int32_t b : batches) {
      const Timing t = run_batch(*runner, b, prompt, steps);
      std::printf(
          "model=%s batch=%d prompt=%d steps=%d threads=%d prefill_tok_s=%.2f decode_tok_s=%.2f "
          "ms_per_step=%.2f kernels=%s blas=%s prefill_faults=%ld faults_per_step=%.1f "
          "prefill_cpu_tok_s=%.2f decode_cpu_tok_s=%.2f\n",
          model.c_str(), b, prompt, steps, sable::ops::cpu::threads(), b * prompt / t.prefill_s,
          b * steps / t.decode_s, 1000.0 * t.decode_s / steps,
          sable::ops::cpu::best_kernels().name, blas.c_str(), t.prefill_faults,
          static_cast<double>(t.decode_faults) / std::max(1, steps), b * prompt / t.prefill_cpu_s,
          b * steps / t.decode_cpu_s);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
