// The CPU attention backend's threads. It splits a step into (token, KV head) units and runs them on
// the host's CPU pool through the ops table's parallel_for (ABI 1.6), the real one of the CPU ops
// here, wrapped to count calls and indices. A small batch-1 decode step stays on the calling
// thread; a batch-8 decode step and a prefill make one parallel_for call; every output is
// bit-identical whatever the thread count, and to a host without the pool (an ABI 1.5 ops table),
// and matches the dense reference.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/ops/context.h"
#include "core/ops/cpu/cpu_ops.h"
#include "core/ops/cpu/cpu_threads.h"
#include "sable/sable.h"
#include "tests/unit/attention_world.h"
#include "tests/unit/test_host.h"

namespace {

using sable::test::Case;
using sable::test::view;
using sable::test::World;

// What the wrapped parallel_for saw.
std::atomic<int64_t> g_calls{0}, g_indices{0};

struct Forward {
  SableParallelFn fn;
  void* user;
};

SableStatus counting_parallel_for(SableOpsContext* ctx, int64_t n, SableParallelFn fn,
                                  void* user) {
  g_calls.fetch_add(1);
  Forward f{fn, user};
  auto counted = [](void* u, int64_t i) {
    g_indices.fetch_add(1);
    const auto* fw = static_cast<const Forward*>(u);
    fw->fn(fw->user, i);
  };
  return sable::ops::cpu_ops()->parallel_for(ctx, n, counted, &f);
}

struct Outcome {
  std::vector<float> out;
  int64_t calls = 0, indices = 0;
};

class CpuAttentionThreads : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    api_ = sable::test::load_attention("sable-attention-cpu.so", &why);
    ASSERT_NE(api_, nullptr) << why;
    ops_ = *sable::ops::cpu_ops();
    ops_.parallel_for = &counting_parallel_for;
  }
  void TearDown() override { sable::ops::cpu::set_threads(0); }

  // One run() of the case's batch with `threads` pool threads; `table` is the host's ops table.
  // logs: where the host's log lines go, if wanted.
  Outcome run(const Case& c, int threads, const SableOps* table,
              std::vector<std::string>* logs = nullptr) {
    sable::ops::cpu::set_threads(threads);
    sable::test::FakeHost host(table);
    World w(c);
    const SableAttentionInit init = w.init();
    SableAttention* attn = nullptr;
    Outcome r;
    EXPECT_EQ(api_->create(host.api(), host.handle(), &init, &attn), SABLE_OK) << host.last_error();
    if (attn == nullptr) return r;
    const SableAttentionBatch batch = w.batch();
    EXPECT_EQ(api_->plan(attn, &batch), SABLE_OK) << host.last_error();
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    r.out.assign(static_cast<size_t>(w.tokens) * c.hq * c.d, -7.0f);
    SableTensor q = w.q(), k = w.k(), v = w.v();
    SableTensor o = view(r.out.data(), {w.tokens, c.hq, c.d}, {int64_t{c.hq} * c.d, c.d, 1});
    SableOpsContext ctx;
    const int64_t calls = g_calls.load(), indices = g_indices.load();
    EXPECT_EQ(api_->run(attn, &ctx, World::kLayer, &q, &k, &v, scale, &o), SABLE_OK)
        << host.last_error();
    r.calls = g_calls.load() - calls;
    r.indices = g_indices.load() - indices;
    api_->destroy(attn);
    if (logs != nullptr) *logs = host.logs();
    const std::vector<float> ref = w.reference(scale);
    for (size_t i = 0; i < r.out.size(); ++i) {
      const float tol = 1e-4f * (1.0f + std::fabs(ref[i]));
      EXPECT_NEAR(r.out[i], ref[i], tol) << c.name << " at " << i;
      if (std::fabs(r.out[i] - ref[i]) > tol) break;
    }
    return r;
  }

  // The case at 1, 2 and 4 threads and on a 1.5 host: the same bits; returns the 4-thread run.
  Outcome same_bits_everywhere(const Case& c) {
    SableOps old = ops_;
    old.struct_size = offsetof(SableOps, parallel_for);  // an ABI 1.5 host: no pool
    const Outcome without = run(c, 4, &old);
    EXPECT_EQ(without.calls, 0) << "the plugin called a parallel_for the host's table lacks";
    Outcome four;
    for (int threads : {1, 2, 4}) {
      const Outcome r = run(c, threads, &ops_);
      EXPECT_EQ(r.out.size(), without.out.size());
      EXPECT_EQ(std::memcmp(r.out.data(), without.out.data(), r.out.size() * sizeof(float)), 0)
          << c.name << ": " << threads << " threads changed the output bits";
      four = r;
    }
    return four;
  }

  const SableAttentionApi* api_ = nullptr;
  SableOps ops_{};
};

// SmolLM2-135M's heads (9 query, 3 KV, dim 64) and Qwen2.5-0.5B's (14 query, 2 KV).
// Batch-8 decode at context 64: 24 units of (sequence, KV head), 0.6M multiply-adds a layer.
const Case kDecodeB8{"decode_b8", 9, 3, 64, 16, 0,
                     {{63, 1}, {60, 1}, {17, 1}, {63, 1}, {5, 1}, {40, 1}, {63, 1}, {31, 1}}};
// Batch-1 decode at context 16: 18K multiply-adds, cheaper on the calling thread.
const Case kDecodeB1Short{"decode_b1_short", 9, 3, 64, 16, 0, {{15, 1}}};
// Batch-1 decode at context 200 on Qwen's heads: 2 (sequence, KV head) pairs, sliced to 14 units.
const Case kDecodeB1Long{"decode_b1_long", 14, 2, 64, 16, 0, {{199, 1}}};
// Two prompts of 64 tokens (mixed with a decode row), and a sliding window.
const Case kPrefill{"prefill_2x64", 9, 3, 64, 16, 0, {{0, 64}, {0, 64}, {30, 1}}};
const Case kWindow{"prefill_window", 14, 2, 64, 16, 24, {{10, 50}, {0, 70}}};

TEST_F(CpuAttentionThreads, BatchEightDecodeRunsOnThePool) {
  const Outcome r = same_bits_everywhere(kDecodeB8);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.indices, 8 * 3) << "one pool index per (sequence, KV head)";
}

TEST_F(CpuAttentionThreads, ShortBatchOneDecodeStaysOnTheCaller) {
  EXPECT_EQ(same_bits_everywhere(kDecodeB1Short).calls, 0);
}

TEST_F(CpuAttentionThreads, LongBatchOneDecodeSlicesItsQueryHeads) {
  const Outcome r = same_bits_everywhere(kDecodeB1Long);
  EXPECT_EQ(r.calls, 1);
  std::vector<std::string> logs;
  run(kDecodeB1Long, 1, &ops_, &logs);
  const bool plain = !logs.empty() && logs[0].find("plain kernel") != std::string::npos;
  if (plain) {
    EXPECT_EQ(r.indices, 14) << "2 KV heads x 7 query-head slices";
  } else {
    EXPECT_EQ(r.indices, 4) << "2 KV heads x 2 slices of 3 or more query heads (vector kernel)";
  }
}

TEST_F(CpuAttentionThreads, PrefillRunsOnThePool) {
  const Outcome r = same_bits_everywhere(kPrefill);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.indices, 64) << "129 tokens x 3 KV heads in 64 strided tasks";
  EXPECT_EQ(same_bits_everywhere(kWindow).calls, 1);
}

// The vector kernels (attend_heads.h; SABLE_CPU_KERNELS picks one) against the plain per-head loop
// (=scalar): head dims with tails (20: a partial vector; 72: a partial block), groups of 1, 3, 7
// and 14 query heads (the kernel takes 4 at a time), pages of 1 and 16, a sliding window, batch-1
// decode at a long context and a prefill. Each also matches the dense reference (run()).
TEST_F(CpuAttentionThreads, VectorKernelsMatchThePlainLoop) {
  const std::vector<Case> cases = {
      {"smollm_b1_ctx300", 9, 3, 64, 16, 0, {{299, 1}}},
      {"qwen_b1_ctx130", 14, 2, 64, 16, 0, {{129, 1}}},
      {"d20_mqa", 7, 1, 20, 1, 0, {{40, 1}, {3, 2}}},
      {"d72_mha_prefill", 3, 3, 72, 16, 0, {{5, 33}}},
      {"d8_window", 8, 2, 8, 4, 9, {{20, 5}, {0, 30}}},
  };
  const char* before = std::getenv("SABLE_CPU_KERNELS");
  const std::string saved = before != nullptr ? before : "";
  std::vector<std::string> logs;
  auto with = [&](const char* kernels, const Case& c) {
    setenv("SABLE_CPU_KERNELS", kernels, 1);
    return run(c, 1, &ops_, &logs);
  };
  auto says = [&](const std::string& what) {
    for (const std::string& line : logs)
      if (line.find("cpu attention: " + what + " kernel") != std::string::npos) return true;
    return false;
  };
  int kernels_run = 0;
  for (const Case& c : cases) {
    const Outcome plain = with("scalar", c);
    EXPECT_TRUE(says("plain")) << c.name;
    for (const char* kernels : {"avx2", "amx"}) {
      const Outcome r = with(kernels, c);
      if (says("plain")) continue;  // this CPU has no such kernel
      ++kernels_run;
      ASSERT_EQ(r.out.size(), plain.out.size());
      for (size_t i = 0; i < r.out.size(); ++i) {
        ASSERT_NEAR(r.out[i], plain.out[i], 2e-6f * (1.0f + std::fabs(plain.out[i])))
            << c.name << " SABLE_CPU_KERNELS=" << kernels << " at " << i;
      }
    }
  }
  if (before != nullptr) setenv("SABLE_CPU_KERNELS", saved.c_str(), 1);
  else unsetenv("SABLE_CPU_KERNELS");
  if (kernels_run == 0) GTEST_SKIP() << "no vector attention kernel on this CPU";
}

}  // namespace
