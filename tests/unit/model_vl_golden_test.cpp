// Qwen2.5-VL on the CPU against transformers (tests/golden/vl, made by scripts/make_vl_golden.py):
// the image files go through Sable's own decode and preprocessing, the vision tower's merged
// embeddings, the M-RoPE positions, the logits at every prompt position (2048 fixed vocab columns)
// and the full last row, and 24 greedy tokens, for a one-image and a two-image prompt. Relative
// error bound 1e-4 (max|a - b| / max|b|), as the text golden tests.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model_moe_golden.h"
#include "vl_golden.h"

namespace sable::golden_test {
namespace {

using namespace sable::vl_golden;

class VlGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { runner_ = make_runner(vl_dir() + "/model", "auto", 16).release(); }
  static void TearDownTestSuite() {
    delete runner_;
    runner_ = nullptr;
  }
  static std::vector<float> encode(const std::string& name) { return vl_golden::encode(*runner_, name); }
  static ModelRunner* runner_;
};
ModelRunner* VlGoldenTest::runner_ = nullptr;

TEST_F(VlGoldenTest, ServedByTheQwenVlPluginWithImageInput) {
  EXPECT_EQ(runner_->plugin_name(), "qwen_vl");
  EXPECT_TRUE(runner_->image_input());
}

TEST_F(VlGoldenTest, VisionEmbeddingsMatch) {
  for (const std::string name : {"a", "b", "c"}) {
    const auto ref = golden().f32("vision_embeds_" + name);
    const auto got = encode(name);
    ASSERT_EQ(got.size(), ref.size()) << name;
    EXPECT_LT(rel_err(got, ref), kMaxRelErr) << "image " << name;
  }
  // Two images in one call give the same rows as two calls, image after image.
  const image::VisionPatches b = patches("b"), c = patches("c");
  std::vector<float> pixels = b.pixel_values;
  pixels.insert(pixels.end(), c.pixel_values.begin(), c.pixel_values.end());
  const int32_t grids[6] = {b.grid_t, b.grid_h, b.grid_w, c.grid_t, c.grid_h, c.grid_w};
  std::vector<float> ref = golden().f32("vision_embeds_b");
  const auto ref_c = golden().f32("vision_embeds_c");
  ref.insert(ref.end(), ref_c.begin(), ref_c.end());
  EXPECT_LT(rel_err(runner_->encode_images(pixels, grids, kMerge), ref), kMaxRelErr);
}

TEST_F(VlGoldenTest, MropePositionsMatchGetRopeIndex) {
  for (size_t i = 0; i < 2; ++i) {
    const Case c = load_case(i, [](const std::string&) { return std::vector<float>(); });
    const auto ref = golden().i64("positions_" + std::to_string(i));
    ASSERT_EQ(ref.size(), c.mrope.positions.size());
    for (size_t k = 0; k < ref.size(); ++k)
      ASSERT_EQ(c.mrope.positions[k], ref[k]) << "case " << i << " index " << k;
  }
}

TEST_F(VlGoldenTest, LogitsAtEveryPositionAndGreedyTokensMatch) {
  const auto cols = golden().meta["logit_cols"].get<std::vector<int32_t>>();
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const Case c = load_case(i, encode);
    const int32_t len = static_cast<int32_t>(c.prompt.size());
    std::vector<int32_t> pages(64);
    for (size_t p = 0; p < pages.size(); ++p) pages[p] = static_cast<int32_t>(p);
    const ModelRunner::Sequence s = whole_prompt(c, pages);
    const auto res = runner_->forward(std::span(&s, 1));
    ASSERT_EQ(res.rows, len);
    const auto ref = golden().f32("logits_" + std::to_string(i));
    EXPECT_LT(rel_err(logit_columns(res, cols), ref), kMaxRelErr) << "logits at every position";
    const auto last = res.row(len - 1);
    EXPECT_LT(rel_err(last, golden().f32("last_logits_" + std::to_string(i))), kMaxRelErr);

    // Greedy decoding: every step's three M-RoPE axes are (index + delta).
    std::vector<int32_t> out{runner::argmax(last)};
    while (out.size() < kGreedySteps) {
      const int32_t index = len + static_cast<int32_t>(out.size()) - 1;
      const int32_t pos = index + c.mrope.delta;
      const int32_t mrope[3] = {pos, pos, pos};
      ModelRunner::Sequence d;
      d.new_tokens = std::span(&out.back(), 1);
      d.num_cached = index;
      d.pages = pages;
      d.mrope_positions = mrope;
      out.push_back(runner::argmax(runner_->forward(std::span(&d, 1)).row(0)));
    }
    EXPECT_EQ(out, c.greedy);
  }
}

// A prefill split inside an image's placeholder run: the first chunk takes the image's first
// rows, the second the rest (spans point into the middle of the embeddings).
TEST_F(VlGoldenTest, ChunkedPrefillSplitsAnImage) {
  const Case c = load_case(1, encode);
  const auto len = static_cast<int32_t>(c.prompt.size());
  const int32_t cut = c.spans[0].row + c.spans[0].count / 2;
  std::vector<int32_t> pages(64);
  for (size_t p = 0; p < pages.size(); ++p) pages[p] = static_cast<int32_t>(p);
  const Chunk first = chunk(c, 0, cut, 16), second = chunk(c, cut, len, 16);
  const ModelRunner::Sequence a = first.seq(c, 0, cut, pages);
  runner_->forward(std::span(&a, 1));
  const ModelRunner::Sequence b = second.seq(c, cut, len, pages);
  const auto res = runner_->forward(std::span(&b, 1));
  EXPECT_LT(rel_err(res.row(0), golden().f32("last_logits_1")), kMaxRelErr);
}

TEST_F(VlGoldenTest, BadVisionInputsAreRejected) {
  const std::vector<float> pixels(10, 0.0f);
  const int32_t grid[3] = {1, 3, 4};  // 12 patches do not match 10 values / not divisible
  EXPECT_THROW(runner_->encode_images(pixels, grid, kMerge), std::invalid_argument);
  const int32_t tokens[2] = {1, 2};
  const int32_t short_mrope[3] = {0, 0, 0};
  std::vector<int32_t> pages(4, 0);
  ModelRunner::Sequence s;
  s.new_tokens = tokens;
  s.pages = pages;
  s.mrope_positions = short_mrope;
  EXPECT_THROW(runner_->forward(std::span(&s, 1)), std::invalid_argument);
}

}  // namespace
}  // namespace sable::golden_test
