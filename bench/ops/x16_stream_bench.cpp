// How close the batch-1 x16 GEMV (qrepack.h, qkernels_x86_x16.inc) runs to one core's read rate,
// on weight sets larger than the last-level cache (issue 21: batch 1 at one thread streams every
// weight byte once a token, so the GEMV should read as fast as a plain loop of 64-byte loads).
//
// A case is a set of x16 copies read in order, as a decode step reads them:
//   0 smollm  SmolLM2-135M's body, Q4_1: 30 layers x {qkv 960, o 576, gate|up 3072} x 576 and
//             down 576 x 1536 (66 MB; fits this VM's shared 300 MB L3 when it is quiet)
//   1 qwen    Qwen2.5-0.5B's body, Q8_0: 24 layers x {qkv 1152, o 896, gate|up 9728} x 896 and
//             down 896 x 4864 (358 MB)
//   2 gate_up Qwen's gate|up (9728 x 896 Q8_0) 48 times (445 MB)
//   3 head    Qwen's LM head (151,936 x 896 Q8_0) 3 times (436 MB) through the x16 head kernel
//   4, 5      a whole step: 0 or 1 and the model's head (SmolLM2: 49,152 x 576 Q8_0, 96 MB in
//             all; Qwen: 503 MB)
//   6, 7      one 1024 x 896 Q8_0 matrix (in L2: the kernel's compute rate), GEMV or head
//   8, 9      SmolLM2's head (49,152 x 576 Q8_0, 30 MB) through the GEMV or the head kernel
// and the copies are either separate allocations (arg 1 = 0: each its own allocate_populated) or
// one allocation in reading order (arg 1 = 1).
// BM_X16Gemv runs the best table's x16 kernel (1 activation row) over each copy in turn;
// BM_X16Stream sums the same bytes with 64-byte loads (a plain read: the hardware prefetcher
// alone). Both report bytes per CPU-second of the calling thread. SABLE_HUGEPAGES=0 puts the
// copies on 4 KiB pages. bench/NOTES.md "Issue 21, thirteenth session" has results.
// Run: build/bin/sable_bench_x16_stream [--benchmark_filter=...]; not run by ctest.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstring>
#include <new>
#include <random>
#include <utility>
#include <vector>

#include "core/ops/cpu/qblocks.h"
#include "core/ops/cpu/qkernels.h"
#include "core/ops/cpu/qrepack.h"
#include "core/ops/host_pages.h"
#include "core/weights/dtype_convert.h"

namespace {

namespace cpu = sable::ops::cpu;

struct Shape {
  int32_t dtype;
  int64_t n, k;
  bool head;  // through the x16 head kernel (int16 activations)
  bool operator==(const Shape&) const = default;
};

std::vector<Shape> make_case(int64_t which) {
  constexpr int32_t q41 = SABLE_DTYPE_Q4_1, q80 = SABLE_DTYPE_Q8_0;
  std::vector<Shape> c;
  if (which == 0 || which == 4) {
    for (int l = 0; l < 30; ++l)
      c.insert(c.end(), {{q41, 960, 576, false},
                         {q41, 576, 576, false},
                         {q41, 3072, 576, false},
                         {q41, 576, 1536, false}});
    if (which == 4) c.push_back({q80, 49152, 576, true});
  } else if (which == 1 || which == 5) {
    for (int l = 0; l < 24; ++l)
      c.insert(c.end(), {{q80, 1152, 896, false},
                         {q80, 896, 896, false},
                         {q80, 9728, 896, false},
                         {q80, 896, 4864, false}});
    if (which == 5) c.push_back({q80, 151936, 896, true});
  } else if (which == 2) {
    c.assign(48, {q80, 9728, 896, false});
  } else if (which == 8 || which == 9) {
    c.assign(1, {q80, 49152, 576, which == 9});  // SmolLM2's head: 30 MB, GEMV or head kernel
  } else if (which == 6 || which == 7) {
    c.assign(1, {q80, 1024, 896, which == 7});  // 0.97 MB: in L2, the kernels' compute rate
  } else if (which == 3) {
    c.assign(3, {q80, 151936, 896, true});
  }
  return c;
}

// One row-layout matrix of random quants with scales that keep |w| small (no denormals).
std::vector<std::byte> random_rows(Shape s, std::mt19937& rng) {
  const int32_t dtype = s.dtype;
  std::vector<std::byte> w(static_cast<size_t>(s.n * cpu::row_bytes(dtype, s.k)));
  for (std::byte& b : w) b = static_cast<std::byte>(rng());
  const uint16_t d = sable::weights::f32_to_f16(dtype == SABLE_DTYPE_Q8_0 ? 1e-3f : 6e-3f);
  const uint16_t mn = sable::weights::f32_to_f16(-0.05f);
  for (int64_t b = 0; b < s.n * s.k / 32; ++b) {
    if (dtype == SABLE_DTYPE_Q8_0) {
      reinterpret_cast<cpu::BlockQ8_0*>(w.data())[b].d = d;
    } else {
      reinterpret_cast<cpu::BlockQ4_1*>(w.data())[b].d = d;
      reinterpret_cast<cpu::BlockQ4_1*>(w.data())[b].m = mn;
    }
  }
  return w;
}

// The case's x16 copies, separate allocations or one, packed from random rows.
struct Copies {
  std::vector<Shape> c;
  std::vector<const char*> ptr;
  std::vector<size_t> bytes;
  std::vector<std::pair<void*, size_t>> allocs;
  size_t total = 0;
  Copies(int64_t which, bool pooled) : c(make_case(which)) {
    std::mt19937 rng(7);
    for (const Shape& s : c)
      bytes.push_back(static_cast<size_t>(cpu::x16_bytes(s.dtype, s.n, s.k)));
    std::vector<size_t> offset;
    for (size_t b : bytes) {
      offset.push_back(total);
      total += (b + 63) / 64 * 64;
    }
    if (pooled) allocs.emplace_back(sable::ops::allocate_populated(total), total);
    for (size_t i = 0; i < c.size(); ++i) {
      if (!pooled) allocs.emplace_back(sable::ops::allocate_populated(bytes[i]), bytes[i]);
      char* p = static_cast<char*>(allocs.back().first) + (pooled ? offset[i] : 0);
      if (allocs.back().first == nullptr) throw std::bad_alloc();
      ptr.push_back(p);
      // One random source per distinct shape: same bytes in each copy, separate memory.
      if (i < 4 || !(c[i] == c[i - 4])) {
        const std::vector<std::byte> rows = random_rows(c[i], rng);
        cpu::x16_pack(c[i].dtype, rows.data(), c[i].n, c[i].k, p);
      } else {
        std::memcpy(p, ptr[i - 4], bytes[i]);
      }
    }
  }
  ~Copies() {
    for (auto [p, b] : allocs) sable::ops::free_populated(p, b);
  }
};

void BM_X16Gemv(benchmark::State& state) {
  const Copies cp(state.range(0), state.range(1) != 0);
  const cpu::QKernels& kern = cpu::best_kernels();
  const int64_t kmax = 4864;
  std::vector<float> x(kmax), out(151936), bound(151936);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : x) v = dist(rng);
  std::vector<cpu::BlockQ8A> xq(kmax / 32);
  std::vector<cpu::BlockQ16A> xh(kmax / 32);
  for (const Shape& s : cp.c)
    if ((s.head ? kern.x16_head(s.dtype) == nullptr : kern.x16_rows(s.dtype) == nullptr) ||
        kern.x16_max(s.dtype) < 1) {
      state.SkipWithError("this CPU's table has no x16 kernel");
      return;
    }
  for (auto _ : state) {
    for (size_t i = 0; i < cp.ptr.size(); ++i) {
      const Shape s = cp.c[i];
      const int64_t groups = (s.n + cpu::kX16 - 1) / cpu::kX16;
      if (s.head) {
        const cpu::QKernels::X16Head head = kern.x16_head(s.dtype);
        kern.quantize_row16(x.data(), xh.data(), s.k);
        head(cp.ptr[i], 0, groups, s.n, xh.data(), s.k, out.data(), bound.data());
      } else {
        kern.quantize_row(x.data(), xq.data(), s.k);
        const void* prep = kern.x16_prep != nullptr
                               ? kern.x16_prep(s.dtype, xq.data(), s.k / 32, 1, s.k)
                               : nullptr;
        kern.x16_rows(s.dtype)(cp.ptr[i], 0, groups, s.n, xq.data(), s.k / 32, 1, s.k, out.data(),
                               s.n, prep);
      }
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(cp.total));
  state.counters["MB"] = static_cast<double>(cp.total) / 1e6;
}

__attribute__((target("avx512f"))) int64_t stream_sum(const char* p, size_t bytes) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 64));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 128));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 192));
  }
  for (; i + 64 <= bytes; i += 64) a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
  return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}

void BM_X16Stream(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512f")) {
    state.SkipWithError("no AVX-512");
    return;
  }
  const Copies cp(state.range(0), state.range(1) != 0);
  for (auto _ : state) {
    int64_t s = 0;
    for (size_t i = 0; i < cp.ptr.size(); ++i) s += stream_sum(cp.ptr[i], cp.bytes[i]);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(cp.total));
  state.counters["MB"] = static_cast<double>(cp.total) / 1e6;
}

void cases(benchmark::internal::Benchmark* b) {
  for (int64_t which = 0; which < 10; ++which)
    for (int64_t pooled = 0; pooled < 2; ++pooled) b->Args({which, pooled});
}

BENCHMARK(BM_X16Gemv)->Apply(cases)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_X16Stream)->Apply(cases)->Unit(benchmark::kMillisecond)->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
