// The CPU GEMM (ops->gemm: x[M,K] · w[N,K]ᵀ through OpenBLAS) at the shapes a forward runs:
// M = 1 (decode), 8 (small decode batch), 128 and 512 (prefill chunks) against the projections of
// Qwen2.5-0.5B (hidden 896, intermediate 4864, vocab 151936) and Llama-3.2-1B (hidden 2048,
// intermediate 8192). Reports GFLOP/s (2·M·N·K per call). BM_PeakSquare measures a large square
// sgemm as the machine's BLAS peak estimate. Run: build/bin/sable_bench_gemm [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "sable/cpp/tensor.h"

namespace {

void run_gemm(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> x(m * k), w(n * k), out(m * n);
  for (float& v : x) v = d(rng);
  for (float& v : w) v = d(rng);
  SableTensor xt = sable::cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {m, k});
  SableTensor wt = sable::cpp::make_tensor(w.data(), SABLE_DTYPE_F32, {n, k});
  SableTensor ot = sable::cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {m, n});
  SableOpsContext ctx;
  const SableOps* ops = sable::ops::cpu_ops();
  for (auto _ : state) {
    if (ops->gemm(&ctx, &xt, &wt, nullptr, &ot) != SABLE_OK) {
      state.SkipWithError("gemm failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
  }
  // FLOP per second; printed with an SI prefix (e.g. "21.4G/s").
  state.counters["FLOPS"] = benchmark::Counter(2.0 * m * n * k,
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
  state.counters["M"] = static_cast<double>(m);
  state.counters["N"] = static_cast<double>(n);
  state.counters["K"] = static_cast<double>(k);
}

// (name, N, K) of each model's projections.
struct Shape {
  const char* name;
  int64_t n, k;
};
const Shape kShapes[] = {
    {"qwen0.5b/qkv", 896 + 2 * 128, 896},  // 14 q heads + 2 kv heads of 64
    {"qwen0.5b/o", 896, 896},
    {"qwen0.5b/gate_up", 2 * 4864, 896},
    {"qwen0.5b/down", 896, 4864},
    {"qwen0.5b/lm_head", 151936, 896},
    {"llama1b/qkv", 2048 + 2 * 512, 2048},  // 32 q heads + 8 kv heads of 64
    {"llama1b/o", 2048, 2048},
    {"llama1b/gate_up", 2 * 8192, 2048},
    {"llama1b/down", 2048, 8192},
};

void register_all() {
  for (const Shape& s : kShapes) {
    for (int64_t m : {1, 8, 128, 512}) {
      // The LM head only runs for rows that need logits: skip the large-M prefill rows there.
      if (s.n > 100000 && m > 8) continue;
      const std::string name = std::string("BM_Gemm/") + s.name + "/M=" + std::to_string(m);
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { run_gemm(st, m, s.n, s.k); })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.3)
          ->UseRealTime();
    }
  }
  benchmark::RegisterBenchmark("BM_PeakSquare/2048", [](benchmark::State& st) {
    run_gemm(st, 2048, 2048, 2048);
  })->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
