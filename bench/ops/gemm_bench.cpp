// The CPU GEMM (ops->gemm: x[M,K] · w[N,K]ᵀ through OpenBLAS) at the shapes a forward runs:
// M = 1 (decode), 8 (small decode batch), 128 and 512 (prefill chunks) against the projections of
// Qwen2.5-0.5B (hidden 896, intermediate 4864, vocab 151936) and Llama-3.2-1B (hidden 2048,
// intermediate 8192). Reports GFLOP/s (2·M·N·K per call). BM_PeakSquare measures a large square
// sgemm as the machine's BLAS peak estimate. BM_Packed runs the same shapes over packed Q8_0 / Q4_0 / Q4_1
// weights (random quants, one thread, CPU time of the calling thread, so that a shared machine's
// time slicing drops out) with int8 activations (decode rows, prefill register tiles) against fp32
// activations (unpacked rows, fp32 panels + OpenBLAS at prefill sizes): bench/NOTES.md "int8
// prefill"; BM_PackedHead the LM head's path (int16 activations, fp32 recheck of the candidate
// rows). Run: build/bin/sable_bench_gemm [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/ops/arena.h"
#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cpu/cpu_threads.h"
#include "core/ops/cpu/qblocks.h"
#include "core/ops/cpu/qrepack.h"
#include "core/weights/dtype_convert.h"
#include "sable/cpp/tensor.h"

namespace {

// Times ops->gemm(x, w) -> out of the CPU table and reports FLOP per second (2·M·N·K a call,
// printed with an SI prefix, e.g. "21.4G/s").
void time_gemm(benchmark::State& state, const SableTensor& xt, const SableTensor& wt, SableTensor& ot,
               int64_t m, int64_t n, int64_t k) {
  SableOpsContext ctx;
  const SableOps* ops = sable::ops::cpu_ops();
  for (auto _ : state) {
    if (ops->gemm(&ctx, &xt, &wt, nullptr, &ot) != SABLE_OK) {
      state.SkipWithError("gemm failed");
      break;
    }
    benchmark::DoNotOptimize(ot.data);
  }
  state.counters["FLOPS"] = benchmark::Counter(2.0 * m * n * k,
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

void run_gemm(benchmark::State& state, int64_t m, int64_t n, int64_t k) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> x(m * k), w(n * k), out(m * n);
  for (float& v : x) v = d(rng);
  for (float& v : w) v = d(rng);
  SableTensor xt = sable::cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {m, k});
  SableTensor wt = sable::cpp::make_tensor(w.data(), SABLE_DTYPE_F32, {n, k});
  SableTensor ot = sable::cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {m, n});
  time_gemm(state, xt, wt, ot, m, n, k);
  state.counters["M"] = static_cast<double>(m);
  state.counters["N"] = static_cast<double>(n);
  state.counters["K"] = static_cast<double>(k);
}

// n rows of k elements of a Q8_0 or Q4_1 matrix: random quants, scales that keep |w| under ~0.1.
std::vector<std::byte> random_packed(int32_t dtype, int64_t n, int64_t k, std::mt19937& rng) {
  namespace cpu = sable::ops::cpu;
  std::vector<std::byte> w(static_cast<size_t>(n * cpu::row_bytes(dtype, k)));
  for (std::byte& b : w) b = static_cast<std::byte>(rng());
  const uint16_t d = sable::weights::f32_to_f16(dtype == SABLE_DTYPE_Q8_0 ? 1e-3f : 6e-3f);
  const uint16_t mn = sable::weights::f32_to_f16(-0.05f);
  for (int64_t b = 0; b < n * k / 32; ++b) {
    if (dtype == SABLE_DTYPE_Q8_0) {
      reinterpret_cast<cpu::BlockQ8_0*>(w.data())[b].d = d;
    } else if (dtype == SABLE_DTYPE_Q4_0) {
      reinterpret_cast<cpu::BlockQ4_0*>(w.data())[b].d = d;
    } else {
      reinterpret_cast<cpu::BlockQ4_1*>(w.data())[b].d = d;
      reinterpret_cast<cpu::BlockQ4_1*>(w.data())[b].m = mn;
    }
  }
  return w;
}

void run_packed(benchmark::State& state, int32_t dtype, bool int8, int64_t m, int64_t n,
                int64_t k, bool head = false, bool x16 = false) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> x(m * k), out(m * n);
  for (float& v : x) v = d(rng);
  std::vector<std::byte> w = random_packed(dtype, n, k, rng);
  SableTensor xt = sable::cpp::make_tensor(x.data(), SABLE_DTYPE_F32, {m, k});
  SableTensor wt = sable::cpp::make_tensor(w.data(), dtype, {n, k});
  if (head) wt.reserved = sable::ops::cpu::kPreciseActivations;  // the LM head's path
  SableTensor ot = sable::cpp::make_tensor(out.data(), SABLE_DTYPE_F32, {m, n});
  sable::ops::cpu::set_threads(1);
  sable::ops::cpu::set_int8_activations(int8);
  // x16: the weight registered for its interleaved copy, as the model host does, and the copy
  // made before the timing (qrepack.h).
  if (x16) {
    sable::ops::cpu::x16_register(dtype, w.data(), n, k);
    sable::ops::cpu::x16_copy(dtype, w.data(), n, k);
  }
  time_gemm(state, xt, wt, ot, m, n, k);
  if (x16) sable::ops::cpu::x16_forget(w.data(), w.size());
}

const char* packed_name(int32_t dtype) {
  return dtype == SABLE_DTYPE_Q8_0 ? "q8_0" : dtype == SABLE_DTYPE_Q4_0 ? "q4_0" : "q4_1";
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
    {"smollm135m/qkv", 576 + 2 * 192, 576},  // 9 q heads + 3 kv heads of 64
    {"smollm135m/gate_up", 2 * 1536, 576},
    {"smollm135m/down", 576, 1536},
    {"smollm135m/lm_head", 49152, 576},
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
  for (const int32_t dtype : {SABLE_DTYPE_Q8_0, SABLE_DTYPE_Q4_0, SABLE_DTYPE_Q4_1}) {
    for (const Shape& s : kShapes) {
      if (s.n > 40000) {  // an LM head: its precise path (qgemm.cpp head_gemm) at decode sizes
        for (int64_t m : {1, 8}) {
          for (const bool x16 : {false, true}) {
            if (x16 && m != 1 && dtype != SABLE_DTYPE_Q8_0) continue;  // Q4: one row only
            const std::string name = std::string(x16 ? "BM_PackedHeadX16/" : "BM_PackedHead/") +
                                     packed_name(dtype) + "/" + s.name + "/M=" + std::to_string(m);
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
                run_packed(st, dtype, true, m, s.n, s.k, true, x16);
              })->Unit(benchmark::kMillisecond)->MinTime(0.3);
          }
        }
        continue;
      }
      for (int64_t m : {1, 2, 3, 4, 8, 32, 256}) {
        for (const bool int8 : {true, false}) {
          const std::string name = std::string("BM_Packed/") + packed_name(dtype) + "/" +
                                   s.name + "/M=" + std::to_string(m) +
                                   (int8 ? "/int8" : "/fp32");
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_packed(st, dtype, int8, m, s.n, s.k);
          })->Unit(benchmark::kMillisecond)->MinTime(0.3);
        }
        {  // the weight's x16 copy (used up to QKernels::x16_max rows)
          const std::string name = std::string("BM_PackedX16/") + packed_name(dtype) + "/" +
                                   s.name + "/M=" + std::to_string(m);
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) {
            run_packed(st, dtype, true, m, s.n, s.k, false, true);
          })->Unit(benchmark::kMillisecond)->MinTime(0.3);
        }
      }
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
