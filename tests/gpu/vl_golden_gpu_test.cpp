// Qwen2.5-VL on CUDA (bf16) against transformers' fp32 reference (tests/golden/vl, made by
// scripts/make_vl_golden.py): the vision tower's merged embeddings of the three golden images, the
// logits at every prompt position of the one-image and the two-image prompt, teacher-forced greedy
// decoding with M-RoPE decode positions (index + delta), and a prefill split inside an image.
// Bounds as the text golden GPU suite: relative L2 error < 2e-2, at least 22 of 24 greedy tokens.
// And the warm-up that reserves the vision tower's largest call before the KV pool is sized.
// Skipped without a GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <numeric>

#include "core/runner/model_runner.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/unit/built_plugins.h"
#include "tests/unit/vl_golden.h"

namespace sable::gputest {
namespace {

using namespace sable::vl_golden;
using runner::ModelRunner;

constexpr double kMaxRelL2 = 2e-2;

// The golden VL model on CUDA; the KV pool sized from free memory unless max_total_tokens is set.
runner::RunnerOptions runner_options() {
  runner::RunnerOptions o;
  o.model_path = vl_dir() + "/model";
  o.device = "cuda";
  o.page_size = 16;
  o.max_batch_tokens = 1024;
  o.max_seqs = 4;
  o.registry = &test_support::registry();
  return o;
}

std::unique_ptr<ModelRunner> make_runner() {
  runner::RunnerOptions o = runner_options();
  o.max_total_tokens = 4096;
  return ModelRunner::create(o);
}

TEST(VlGoldenGpu, VisionEmbeddingsMatch) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner();
  for (const std::string name : {"a", "b", "c"}) {
    const auto got = encode(*r, name);
    const auto ref = golden().f32("vision_embeds_" + name);
    ASSERT_EQ(got.size(), ref.size()) << name;
    EXPECT_LT(rel_l2(got, ref), kMaxRelL2) << "image " << name;
  }
}

// Case i with its images encoded on `r`.
Case cuda_case(ModelRunner& r, size_t i) {
  return load_case(i, [&](const std::string& name) { return encode(r, name); });
}

TEST(VlGoldenGpu, LogitsAndTeacherForcedGreedyMatch) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner();
  const auto cols = golden().meta["logit_cols"].get<std::vector<int32_t>>();
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const Case c = cuda_case(*r, i);
    const auto len = static_cast<int32_t>(c.prompt.size());
    std::vector<int32_t> pages(64);
    std::iota(pages.rbegin(), pages.rend(), 0);  // non-contiguous order
    const ModelRunner::Sequence s = whole_prompt(c, pages);
    const auto res = r->forward(std::span(&s, 1));
    ASSERT_EQ(res.rows, len);
    const auto ref = golden().f32("logits_" + std::to_string(i));
    EXPECT_LT(rel_l2(logit_columns(res, cols), ref), kMaxRelL2) << "logits at every position";
    // Teacher-forced: feed the reference token, compare each step's argmax.
    int agree = runner::argmax(res.row(len - 1)) == c.greedy[0];
    for (size_t step = 1; step < c.greedy.size(); ++step) {
      const int32_t index = len + static_cast<int32_t>(step) - 1;
      const int32_t pos = index + c.mrope.delta;
      const int32_t mrope[3] = {pos, pos, pos};
      ModelRunner::Sequence d;
      d.new_tokens = std::span(&c.greedy[step - 1], 1);
      d.num_cached = index;
      d.pages = pages;
      d.mrope_positions = mrope;
      agree += runner::argmax(r->forward(std::span(&d, 1)).row(0)) == c.greedy[step];
    }
    EXPECT_GE(agree, 22) << "of " << c.greedy.size() << " greedy tokens";
  }
}

TEST(VlGoldenGpu, PrefillSplitInsideAnImage) {
  SABLE_REQUIRE_GPU();
  auto r = make_runner();
  const Case c = cuda_case(*r, 1);
  const auto len = static_cast<int32_t>(c.prompt.size());
  const int32_t cut = c.spans[0].row + c.spans[0].count / 2;
  const auto hidden = static_cast<size_t>(r->info().hidden_size);
  std::vector<int32_t> pages(64);
  std::iota(pages.begin(), pages.end(), 0);
  const auto ref = golden().f32("last_logits_1");
  // The same prompt in one piece on this GPU: its bf16 error is what the split run may reach.
  // One row of the whole vocabulary is noisier than the all-positions check above (the H100 run
  // measured 0.0239 split); a wrong split (positions, image rows) is off by far more.
  const ModelRunner::Sequence whole = whole_prompt(c, pages);
  const double whole_err = rel_l2(r->forward(std::span(&whole, 1)).row(len - 1), ref);
  const Chunk first = chunk(c, 0, cut, hidden), second = chunk(c, cut, len, hidden);
  const ModelRunner::Sequence a = first.seq(c, 0, cut, pages);
  r->forward(std::span(&a, 1));
  const ModelRunner::Sequence b = second.seq(c, cut, len, pages);
  const auto res = r->forward(std::span(&b, 1));
  const double split_err = rel_l2(res.row(0), ref);
  EXPECT_LT(split_err, std::max(kMaxRelL2, 1.5 * whole_err)) << "one piece: " << whole_err;
}

// The startup warm-up reserves the largest vision-tower call before the KV pool takes the rest of
// device memory (core/runner/warm_up.h): with the pool sized from free memory (mem_fraction_static
// 0.85 of the GPU for this tiny model), a call of the whole budget (5120 patches, the default
// max_pixels' largest image) runs without the device losing any more free memory, the golden
// embeddings still come out, and a call over the budget is refused.
TEST(VlGoldenGpu, WarmUpReservesTheLargestImageCall) {
  SABLE_REQUIRE_GPU();
  runner::RunnerOptions o = runner_options();
  o.vision = {5120, kMerge, 3 * 2 * 14 * 14};
  auto r = ModelRunner::create(o);
  EXPECT_EQ(r->max_image_patches(), 5120);
  size_t free_before = 0, free_after = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  const int32_t grid[3] = {1, 64, 80};
  const std::vector<float> pixels(size_t{5120} * o.vision.patch_dim, 0.5f);
  const auto out = r->encode_images(pixels, grid, kMerge);
  EXPECT_EQ(out.size(), size_t{1280} * r->info().hidden_size);
  const auto got = encode(*r, "b");
  EXPECT_LT(rel_l2(got, golden().f32("vision_embeds_b")), kMaxRelL2);
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  // The pixels alone are 24 MiB on the device: an arena that had to grow would show it.
  EXPECT_LE(free_before - std::min(free_before, free_after), size_t{4} << 20)
      << "free before " << free_before << ", after " << free_after;
  const int32_t over[3] = {1, 2, 2562};
  const std::vector<float> more(size_t{5124} * o.vision.patch_dim, 0.5f);
  EXPECT_THROW(r->encode_images(more, over, kMerge), std::invalid_argument);
}

}  // namespace
}  // namespace sable::gputest
