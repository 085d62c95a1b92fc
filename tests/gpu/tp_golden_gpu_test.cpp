// Tensor parallelism on CUDA (TP 2, NCCL): skipped without two GPUs.
//
// - The NCCL communicator on devices 0 and 1: all_reduce (sum), all_gather along dims 0 and 1,
//   broadcast, barrier, and an abort that makes later collectives fail instead of hang.
// - Every golden causal model whose heads allow TP 2: bf16 logits at every prompt position within
//   relative L2 2e-2 of the fp32 reference (MoE: 2 in 3 positions, as model_golden_gpu_test
//   explains), teacher-forced greedy agreeing with the reference on >= 22 of 24 tokens (14 of 16
//   for qwen2_tok), and decode steps replayed from per-rank CUDA graphs bit-identical to eager TP 2.
// - A vocabulary TP 2 does not divide: a shorter last slice, its logits padded for the gather and
//   cut after it.
#include <cuda_runtime.h>

#include <filesystem>
#include <numeric>
#include <thread>

#include "core/comm/communicator.h"
#include "core/runner/model_runner.h"
#include "core/weights/safetensors.h"
#include "tests/gpu/gpu_golden.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/vocab_cut.h"

namespace sable::gputest {
namespace {

using runner::ModelRunner;

bool have_two_gpus() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n >= 2;
}
#define SABLE_REQUIRE_TWO_GPUS() \
  if (!have_two_gpus()) GTEST_SKIP() << "fewer than 2 CUDA devices"

SableTensor dev_f32(float* p, int32_t device, std::initializer_list<int64_t> shape) {
  return cpp::make_tensor(p, SABLE_DTYPE_F32, shape, SABLE_DEVICE_CUDA, device);
}

TEST(NcclComm, CollectivesOnTwoGpus) {
  SABLE_REQUIRE_TWO_GPUS();
  if (!comm::nccl_available()) GTEST_SKIP() << "this build has no NCCL";
  const std::vector<int32_t> devices = {0, 1};
  auto group = comm::make_nccl_group(devices);
  std::vector<std::vector<float>> reduced(2), gathered(2), bcast(2);
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      cudaStream_t s;
      ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
      const comm::Endpoint e = group->endpoint(r);
      float *x, *out;
      ASSERT_EQ(cudaMalloc(&x, 4 * sizeof(float)), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&out, 8 * sizeof(float)), cudaSuccess);
      const std::vector<float> v = {1.0f + r, 2.0f + r, 3.0f + r, 4.0f + r};  // x[2, 2]
      cudaMemcpy(x, v.data(), 16, cudaMemcpyHostToDevice);
      SableTensor xt = dev_f32(x, r, {2, 2}), ot = dev_f32(out, r, {2, 4});
      ASSERT_EQ(e.api->all_gather(e.handle, &xt, 1, &ot, s), SABLE_OK) << e.api->last_error(e.handle);
      gathered[static_cast<size_t>(r)].resize(8);
      cudaMemcpyAsync(gathered[static_cast<size_t>(r)].data(), out, 32, cudaMemcpyDeviceToHost, s);
      ASSERT_EQ(e.api->all_reduce(e.handle, &xt, SABLE_REDUCE_SUM, s), SABLE_OK);
      reduced[static_cast<size_t>(r)].resize(4);
      cudaMemcpyAsync(reduced[static_cast<size_t>(r)].data(), x, 16, cudaMemcpyDeviceToHost, s);
      cudaMemcpyAsync(x, v.data(), 16, cudaMemcpyHostToDevice, s);
      ASSERT_EQ(e.api->broadcast(e.handle, &xt, 1, s), SABLE_OK);
      bcast[static_cast<size_t>(r)].resize(4);
      cudaMemcpyAsync(bcast[static_cast<size_t>(r)].data(), x, 16, cudaMemcpyDeviceToHost, s);
      ASSERT_EQ(e.api->barrier(e.handle, s), SABLE_OK);
      ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
      cudaFree(x);
      cudaFree(out);
      cudaStreamDestroy(s);
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(reduced[r], (std::vector<float>{3, 5, 7, 9}));
    EXPECT_EQ(gathered[r], (std::vector<float>{1, 2, 2, 3, 3, 4, 4, 5}));
    EXPECT_EQ(bcast[r], (std::vector<float>{2, 3, 4, 5}));
  }
  group->abort("test abort");
  const comm::Endpoint e = group->endpoint(0);
  EXPECT_EQ(e.api->barrier(e.handle, nullptr), SABLE_ERR_DEVICE);
  EXPECT_NE(std::string(e.api->last_error(e.handle)).find("test abort"), std::string::npos);
}

std::unique_ptr<ModelRunner> make_tp2(const std::string& name, bool graphs) {
  return make_cuda_runner(name, graphs, /*tp_size=*/2);
}

Golden load(const std::string& name) { return load_golden(name); }

class TpGoldenGpu : public ::testing::TestWithParam<std::string> {};

TEST_P(TpGoldenGpu, LogitsGreedyAndGraphs) {
  SABLE_REQUIRE_TWO_GPUS();
  const std::string name = GetParam();
  const Golden g = load(name);
  auto eager = make_tp2(name, false);
  ASSERT_EQ(eager->tp_size(), 2);
  if (g.tensors) {
    for (size_t i = 0; i < g.prompts.size(); ++i) {
      const std::vector<double> errors = prompt_logit_errors(*eager, g, i);
      const auto rows = static_cast<int64_t>(errors.size());
      int64_t within = 0;
      for (int64_t row = 0; row < rows; ++row) {
        const double err = errors[static_cast<size_t>(row)];
        within += err < 2e-2;
        if (!is_moe(name)) EXPECT_LT(err, 2e-2) << name << " prompt " << i << " position " << row;
      }
      if (is_moe(name)) EXPECT_GE(3 * within, 2 * rows) << name << " prompt " << i;
    }
  }
  const size_t need = g.greedy[0].size() == 24 ? 22 : 14;
  auto graphs = make_tp2(name, true);
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const auto picks = teacher_forced(*eager, g, {i})[0];
    size_t agree = 0;
    for (size_t s = 0; s < picks.size(); ++s) agree += picks[s] == g.greedy[i][s];
    EXPECT_GE(agree, need) << name << " prompt " << i;
    EXPECT_EQ(teacher_forced(*graphs, g, {i})[0], picks) << name << " prompt " << i << ": graphs";
  }
  EXPECT_FALSE(eager->tp_failure().has_value());
}

// A vocabulary TP 2 does not divide (the golden model cut to 999 tokens, tests/unit/vocab_cut.h):
// the last rank holds 499 embedding and LM head rows, its logits block is padded for the gather
// and the gathered logits cut to 999 columns, which must be the fp32 reference's first 999 (the same bf16 bound); decode steps
// replayed from graphs pick what eager TP 2 picks. llama's LM head is its own, qwen2's tied.
TEST(TpGoldenGpuVocab, UnevenVocabularyIsPaddedAndCut) {
  SABLE_REQUIRE_TWO_GPUS();
  constexpr int64_t kVocab = 999;
  for (const std::string name : {"llama", "qwen2"}) {
    const std::string dir = ::testing::TempDir() + "/sable_tp_gpu_vocab_" + name;
    test_support::cut_vocab_copy(model_dir(name), dir, kVocab);
    Golden g = load(name);
    for (auto& p : g.prompts)
      for (auto& id : p) id %= static_cast<int32_t>(kVocab);
    for (auto& p : g.greedy)
      for (auto& id : p) id %= static_cast<int32_t>(kVocab);
    auto eager = make_tp2(dir, false);
    for (size_t i = 0; i < g.prompts.size(); ++i) {
      std::vector<int32_t> pages(static_cast<size_t>(eager->num_pages()));
      std::iota(pages.begin(), pages.end(), 0);
      ModelRunner::Sequence s{g.prompts[i], 0, pages, true};
      auto res = eager->forward(std::span<const ModelRunner::Sequence>(&s, 1));
      ASSERT_EQ(res.vocab, kVocab);
      const std::vector<float> ref = g.f32("logits_" + std::to_string(i));
      const int64_t full = static_cast<int64_t>(ref.size()) / res.rows;
      for (int64_t row = 0; row < res.rows; ++row) {
        std::vector<float> a(res.row(row).begin(), res.row(row).end());
        std::vector<float> b(ref.begin() + row * full, ref.begin() + row * full + kVocab);
        EXPECT_LT(rel_l2(a, b), 2e-2) << name << " prompt " << i << " position " << row;
      }
    }
    auto graphs = make_tp2(dir, true);
    for (size_t i = 0; i < g.prompts.size(); ++i)
      EXPECT_EQ(teacher_forced(*graphs, g, {i})[0], teacher_forced(*eager, g, {i})[0]) << name << " " << i;
    graphs.reset();
    eager.reset();
    std::filesystem::remove_all(dir);
  }
}

// TP 2 splits the KV heads of most (2 KV heads), replicates Gemma's and qwen2_tok's single one.
INSTANTIATE_TEST_SUITE_P(Models, TpGoldenGpu,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "qwen2_tok",
                                           "qwen2_moe", "mixtral", "qwen3_moe", "gemma", "granite",
                                           "helium", "stablelm"));

}  // namespace
}  // namespace sable::gputest
