// The L2 prefetch beside small decode batches' attention, LoRA expands and (optionally) each GEMM
// (core/ops/cuda/l2_prefetch.h): learned in one forward, launched on a side stream in the next,
// joined at the forward's end (also inside a CUDA graph capture, which fails to end with the side
// stream apart), and limited to memory that is still registered weight memory. The settings are
// read once per thread, so each case runs on a thread of its own with them set.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <thread>

#include "core/ops/cuda/l2_prefetch.h"
#include "core/ops/weight_ranges.h"
#include "gpu_test_util.h"

namespace sable::ops::cuda {
namespace {

using gputest::DeviceBuffer;

// Runs `body` on a new thread whose L2Prefetch reads SABLE_L2_PREFETCH=`mb` and
// SABLE_L2_PREFETCH_NEXT=`next_mb` (gtest assertions work on any thread).
void with_settings(const char* mb, const char* next_mb, const std::function<void()>& body) {
  setenv("SABLE_L2_PREFETCH", mb, 1);
  setenv("SABLE_L2_PREFETCH_NEXT", next_mb, 1);
  std::thread(body).join();
  unsetenv("SABLE_L2_PREFETCH");
  unsetenv("SABLE_L2_PREFETCH_NEXT");
}

TEST(CudaL2Prefetch, LearnsLaunchesBesideAndJoinsEagerAndCaptured) {
  SABLE_REQUIRE_GPU();
  with_settings("8", "0", [] {
    const size_t w1_bytes = 1 << 20, w2_bytes = (3 << 20) + 100;
    DeviceBuffer w1(w1_bytes), w2(w2_bytes), act(1 << 16);
    register_weight_range(w1.get(), w1_bytes);
    register_weight_range(w2.get(), w2_bytes);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    L2Prefetch& pf = l2_prefetch();
    ASSERT_EQ(pf.budget(), size_t(8) << 20);
    int backend = 0;
    // One forward's calls: the attention of layer 0 with `tokens` rows, then three GEMMs (the
    // activation operand is not weight memory and is never recorded).
    auto forward = [&](int64_t tokens) {
      pf.before_attention(stream, &backend, 0, tokens);
      pf.on_gemm(stream, &backend, act.get(), 1 << 16, tokens);
      pf.on_gemm(stream, &backend, w1.get(), w1_bytes, tokens);
      pf.on_gemm(stream, &backend, w2.get(), w2_bytes, tokens);
      EXPECT_TRUE(pf.end_forward(stream));
    };
    forward(1);  // learns: nothing to prefetch yet
    int64_t n = pf.launches();
    forward(1);
    EXPECT_EQ(pf.launches() - n, 1);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    n = pf.launches();
    forward(1000);  // a large batch's attention: no prefetch
    EXPECT_EQ(pf.launches(), n);

    // Captured: the prefetch becomes a branch of the graph, joined before the capture ends.
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    forward(1);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    EXPECT_EQ(pf.launches() - n, 1);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    cudaGraphDestroy(graph);
    for (int replay = 0; replay < 2; ++replay)
      ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    cudaGraphExecDestroy(exec);

    // A LoRA call's point prefetches at decode batches of up to 256 rows (its own channel).
    auto lora_forward = [&](int64_t tokens) {
      pf.before_lora(stream, &backend, 0, 0, tokens);
      pf.on_gemm(stream, &backend, w1.get(), w1_bytes, tokens);
      EXPECT_TRUE(pf.end_forward(stream));
    };
    lora_forward(64);
    n = pf.launches();
    lora_forward(64);
    EXPECT_EQ(pf.launches() - n, 1);
    lora_forward(4096);
    EXPECT_EQ(pf.launches() - n, 1);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

    // Freed weights are not prefetched: with both forgotten the learned record launches nothing.
    forward(1);
    forget_weight_ranges(w1.get(), w1_bytes);
    forget_weight_ranges(w2.get(), w2_bytes);
    n = pf.launches();
    forward(1);
    EXPECT_EQ(pf.launches(), n);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    cudaStreamDestroy(stream);
  });
}

// SABLE_L2_PREFETCH_NEXT: each GEMM's point prefetches the next GEMM's weight, never its own.
TEST(CudaL2Prefetch, EachGemmPrefetchesTheNextGemmsWeight) {
  SABLE_REQUIRE_GPU();
  with_settings("0", "1", [] {
    const size_t bytes = 2 << 20;
    DeviceBuffer w1(bytes), w2(bytes);
    register_weight_range(w1.get(), bytes);
    register_weight_range(w2.get(), bytes);
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    L2Prefetch& pf = l2_prefetch();
    int backend = 0;
    auto forward = [&] {
      pf.before_attention(stream, &backend, 0, 1);  // off (budget 0): no launch, no record
      pf.on_gemm(stream, &backend, w1.get(), bytes, 1);
      pf.on_gemm(stream, &backend, w1.get(), bytes, 1);  // a composed op repeating it: no point
      pf.on_gemm(stream, &backend, w2.get(), bytes, 1);
      EXPECT_TRUE(pf.end_forward(stream));
    };
    forward();
    const int64_t n = pf.launches();
    forward();  // w1's point prefetches w2; w2's point has nothing after it
    EXPECT_EQ(pf.launches() - n, 1);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    forget_weight_ranges(w1.get(), bytes);
    forget_weight_ranges(w2.get(), bytes);
    cudaStreamDestroy(stream);
  });
}

TEST(CudaL2Prefetch, KernelCoversUnalignedRanges) {
  SABLE_REQUIRE_GPU();
  DeviceBuffer a(5000), b(1 << 20);
  const void* data[] = {static_cast<char*>(a.get()) + 3, b.get(), nullptr};
  const size_t bytes[] = {4990, 1 << 20, 64};
  EXPECT_TRUE(launch_l2_prefetch(data, bytes, 3, nullptr));
  EXPECT_TRUE(launch_l2_prefetch(data, bytes, 3, nullptr, /*evict_last=*/true));
  EXPECT_TRUE(launch_l2_prefetch(data, bytes, 0, nullptr));  // nothing: no launch, no error
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace sable::ops::cuda
