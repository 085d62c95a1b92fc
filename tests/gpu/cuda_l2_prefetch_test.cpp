// The L2 prefetch beside small decode batches' attention (core/ops/cuda/l2_prefetch.h): learned
// in one forward, launched on a side stream in the next, joined at the forward's end (also inside
// a CUDA graph capture, which fails to end with the side stream apart), and limited to memory
// that is still registered weight memory.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "core/ops/cuda/l2_prefetch.h"
#include "core/ops/weight_ranges.h"
#include "gpu_test_util.h"

namespace sable::ops::cuda {
namespace {

using gputest::DeviceBuffer;

TEST(CudaL2Prefetch, LearnsLaunchesBesideAndJoinsEagerAndCaptured) {
  SABLE_REQUIRE_GPU();
  const size_t w1_bytes = 1 << 20, w2_bytes = (3 << 20) + 100;
  DeviceBuffer w1(w1_bytes), w2(w2_bytes), act(1 << 16);
  register_weight_range(w1.get(), w1_bytes);
  register_weight_range(w2.get(), w2_bytes);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  L2Prefetch& pf = l2_prefetch();
  const bool on = pf.budget() > 0;
  int backend = 0;
  // One forward's calls: the attention of layer 0 with `tokens` rows, then three GEMMs (the
  // activation operand is not weight memory and is never recorded).
  auto forward = [&](int64_t tokens) {
    pf.before_attention(stream, &backend, 0, tokens);
    pf.on_weight(act.get(), 1 << 16);
    pf.on_weight(w1.get(), w1_bytes);
    pf.on_weight(w2.get(), w2_bytes);
    EXPECT_TRUE(pf.end_forward(stream));
  };
  forward(1);  // learns: nothing to prefetch yet
  int64_t n = pf.launches();
  forward(1);
  EXPECT_EQ(pf.launches() - n, on ? 1 : 0);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  n = pf.launches();
  forward(1000);  // a large batch's attention: no prefetch
  EXPECT_EQ(pf.launches(), n);

  // Captured: the prefetch becomes a branch of the graph, joined before the capture ends.
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  forward(1);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  EXPECT_EQ(pf.launches() - n, on ? 1 : 0);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  cudaGraphDestroy(graph);
  for (int replay = 0; replay < 2; ++replay) ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaGraphExecDestroy(exec);

  // A LoRA call's point prefetches at decode batches of up to 256 rows (its own channel).
  auto lora_forward = [&](int64_t tokens) {
    pf.before_lora(stream, &backend, 0, 0, tokens);
    pf.on_weight(w1.get(), w1_bytes);
    EXPECT_TRUE(pf.end_forward(stream));
  };
  lora_forward(64);
  n = pf.launches();
  lora_forward(64);
  EXPECT_EQ(pf.launches() - n, on ? 1 : 0);
  lora_forward(4096);
  EXPECT_EQ(pf.launches() - n, on ? 1 : 0);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

  // Freed weights are not prefetched: with both forgotten the learned record launches nothing.
  forget_weight_ranges(w1.get(), w1_bytes);
  forget_weight_ranges(w2.get(), w2_bytes);
  n = pf.launches();
  forward(1);
  EXPECT_EQ(pf.launches(), n);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaStreamDestroy(stream);
}

TEST(CudaL2Prefetch, KernelCoversUnalignedRanges) {
  SABLE_REQUIRE_GPU();
  DeviceBuffer a(5000), b(1 << 20);
  const void* data[] = {static_cast<char*>(a.get()) + 3, b.get(), nullptr};
  const size_t bytes[] = {4990, 1 << 20, 64};
  EXPECT_TRUE(launch_l2_prefetch(data, bytes, 3, nullptr));
  EXPECT_TRUE(launch_l2_prefetch(data, bytes, 0, nullptr));  // nothing: no launch, no error
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace sable::ops::cuda
