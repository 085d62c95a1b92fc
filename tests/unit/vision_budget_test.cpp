// The vision tower's per-call budget (core/engine/image_request.h, image_forward.h): the largest
// image the processor makes from max_pixels, the budget the engine gives the runner (and its
// startup error below the largest image), the 400 for an image over it, the cutting of pending
// images into calls of at most the budget, and on the CPU runner with the golden Qwen2.5-VL that
// cut calls give the golden embeddings while a call over the budget is refused. The CUDA warm-up
// that reserves the budget's memory: tests/gpu/vl_golden_gpu_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/config/server_config.h"
#include "core/engine/image_forward.h"
#include "core/engine/image_request.h"
#include "core/hf_config/hf_config.h"
#include "core/sampling/sampling_params.h"
#include "core/tokenizer/tokenizer.h"
#include "model_moe_golden.h"
#include "vl_golden.h"

namespace sable::engine {
namespace {

using vl_golden::golden;
using vl_golden::kImageToken;
using vl_golden::vl_dir;

const std::string kModel = vl_dir() + "/model";

const tokenizer::Tokenizer& tok() {
  static const auto t =
      tokenizer::Tokenizer::load(std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2_tok");
  return *t;
}

// A copy of the golden model's config.json beside a preprocessor_config.json of `max_pixels`.
std::filesystem::path model_with_max_pixels(int64_t max_pixels) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sable_vision_budget_" + std::to_string(max_pixels));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModel + "/config.json", dir / "config.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir / "preprocessor_config.json")
      << R"({"min_pixels": 3136, "max_pixels": )" << max_pixels << "}";
  return dir;
}

TEST(VisionBudget, LargestImageFollowsMaxPixels) {
  image::QwenVlProcessorConfig p;  // Qwen2-VL's default: 28·28·1280 pixels, 1280 merged tokens
  EXPECT_EQ(largest_image_patches(p), 5120);
  p.max_pixels = 12845056;  // Qwen2.5-VL's preprocessor_config.json on the Hub: 16384 tokens
  EXPECT_EQ(largest_image_patches(p), 65536);
  p.max_pixels = 28 * 28 * 36 + 100;  // not a whole number of tokens: rounds down
  EXPECT_EQ(largest_image_patches(p), 144);
  p.max_pixels = 100;  // below one token: smart_resize still makes one
  EXPECT_EQ(largest_image_patches(p), 4);
  // smart_resize never makes more than that under the default limits (a large, a wide, a tall
  // and an odd-sized image).
  p = {};
  for (const auto& [h, w] :
       {std::pair{4000, 3000}, {1024, 1024}, {70, 14000}, {14000, 70}, {999, 1001}}) {
    const auto [rh, rw] = image::smart_resize(h, w, 28, p.min_pixels, p.max_pixels);
    EXPECT_LE(int64_t{rh / 14} * (rw / 14), largest_image_patches(p)) << h << "x" << w;
  }
}

TEST(VisionBudget, FromTheCheckpointAndTheServerOption) {
  const runner::VisionBudget b = vision_budget(kModel, 0);
  EXPECT_EQ(b.max_patches, 5120);
  EXPECT_EQ(b.merge, 2);
  EXPECT_EQ(b.patch_dim, 3 * 2 * 14 * 14);
  EXPECT_EQ(vision_budget(kModel, 6002).max_patches, 6000);  // whole merged tokens
  EXPECT_EQ(vision_budget(model_with_max_pixels(28 * 28 * 36).string(), 0).max_patches, 144);
  try {
    vision_budget(kModel, 100);
    ADD_FAILURE() << "a budget below the largest image must stop startup";
  } catch (const config::ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("max_image_patches: 100 is below the 5120 patches"), std::string::npos)
        << msg;
  }
  // Text-only checkpoints and paths without a config.json (a GGUF file) have no budget.
  EXPECT_EQ(vision_budget(std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2", 0).max_patches, 0);
  EXPECT_EQ(vision_budget(std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2", 100).max_patches, 0);
  EXPECT_EQ(vision_budget("/no/such/model.gguf", 0).max_patches, 0);
}

TEST(VisionBudget, AnImageOverTheBudgetIs400NamingIt) {
  ImageSettings s = image_settings(true, "Qwen2_5_VLForConditionalGeneration",
                                   hf::HfConfig::load(kModel + "/config.json"), kModel, &tok());
  s.max_patches = 100;  // image b is 10 x 14 = 140 patches, image a 6 x 8 = 48
  std::vector<int32_t> ids = {1, kImageToken, 2};
  try {
    prepare_images(s, {vl_dir() + "/image_b.jpg"}, ids);
    ADD_FAILURE() << "140 patches over a budget of 100 must be refused";
  } catch (const sampling::ValidationError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.field(), "image_data");
    EXPECT_NE(msg.find("image_data[0]: the image resizes to 196x140 pixels, 140 patches, more than "
                       "the 100"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("max_image_patches"), std::string::npos) << msg;
  }
  EXPECT_EQ(ids, (std::vector<int32_t>{1, kImageToken, 2}));  // untouched on failure
  EXPECT_NE(prepare_images(s, {vl_dir() + "/image_a.png"}, ids), nullptr);
}

TEST(VisionCallGroups, CutsInOrderAtTheBudget) {
  using Ends = std::vector<size_t>;
  const std::vector<int64_t> three = {140, 24, 48};
  EXPECT_EQ(vision_call_groups(three, 144), (Ends{1, 3}));  // [b], [c, a]
  EXPECT_EQ(vision_call_groups(three, 212), (Ends{3}));     // exactly the budget: one call
  EXPECT_EQ(vision_call_groups(three, 211), (Ends{2, 3}));
  EXPECT_EQ(vision_call_groups(three, 0), (Ends{3}));         // no budget: one call
  EXPECT_EQ(vision_call_groups(three, 48), (Ends{1, 2, 3}));  // b alone over it: its own call
  EXPECT_TRUE(vision_call_groups({}, 10).empty());
}

// The golden model on the CPU with a budget of 144 patches: requests [b, c] and [a] need two
// calls ([b], then [c, a]); each request gets the golden embeddings of its images, in order.
TEST(VisionCallGroups, CutCallsGiveTheGoldenEmbeddings) {
  runner::RunnerOptions opt;
  opt.model_path = kModel;
  opt.page_size = 16;
  opt.num_pages = 64;
  opt.attention_backend = "cpu";
  opt.registry = &test_support::registry();
  opt.vision = vision_budget(model_with_max_pixels(28 * 28 * 36).string(), 0);
  ASSERT_EQ(opt.vision.max_patches, 144);
  const auto runner = runner::ModelRunner::create(opt);
  EXPECT_EQ(runner->max_image_patches(), 144);

  ImageSettings s = image_settings(true, "Qwen2_5_VLForConditionalGeneration",
                                   hf::HfConfig::load(kModel + "/config.json"), kModel, &tok());
  s.max_patches = runner->max_image_patches();
  std::vector<int32_t> ids_bc = {1, kImageToken, 2, kImageToken, 3}, ids_a = {4, kImageToken, 5};
  const auto bc =
      prepare_images(s, {vl_dir() + "/image_b.jpg", vl_dir() + "/image_c.webp"}, ids_bc);
  const auto a = prepare_images(s, {vl_dir() + "/image_a.png"}, ids_a);

  // One call of both of bc's images (164 patches) is over the budget.
  const int32_t grids[6] = {1, 10, 14, 1, 4, 6};
  try {
    runner->encode_images(bc->pixel_values, grids, 2);
    ADD_FAILURE() << "164 patches in one call over a budget of 144";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("164 patches in one call exceed the 144"),
              std::string::npos)
        << e.what();
  }

  std::vector<int32_t> pages(64);
  for (int32_t i = 0; i < 64; ++i) pages[static_cast<size_t>(i)] = i;
  std::vector<scheduler::ModelBackend::Sequence> seqs(2);
  seqs[0].new_tokens = ids_bc;
  seqs[0].pages = std::span<const int32_t>(pages).subspan(0, 32);
  seqs[0].images = bc.get();
  seqs[1].new_tokens = ids_a;
  seqs[1].pages = std::span<const int32_t>(pages).subspan(32, 32);
  seqs[1].images = a.get();
  std::vector<runner::ModelRunner::Sequence> rs(2);
  ImageForward forward;
  forward.prepare(*runner, seqs, rs);

  std::vector<float> ref_bc = golden().f32("vision_embeds_b");
  const auto ref_c = golden().f32("vision_embeds_c");
  ref_bc.insert(ref_bc.end(), ref_c.begin(), ref_c.end());
  ASSERT_EQ(bc->embeds.size(), ref_bc.size());
  EXPECT_LT(golden_test::rel_err(bc->embeds, ref_bc), golden_test::kMaxRelErr);
  const auto ref_a = golden().f32("vision_embeds_a");
  ASSERT_EQ(a->embeds.size(), ref_a.size());
  EXPECT_LT(golden_test::rel_err(a->embeds, ref_a), golden_test::kMaxRelErr);
  EXPECT_TRUE(bc->pixel_values.empty());  // dropped once the tower has run
  EXPECT_TRUE(a->pixel_values.empty());
  ASSERT_EQ(rs[0].embeds.size(), 2u);  // b's and c's rows spliced into the first request
  EXPECT_EQ(rs[0].embeds[0].row, 1);
  EXPECT_EQ(rs[0].embeds[0].count, 35);
  EXPECT_EQ(rs[0].embeds[1].row, 37);
  EXPECT_EQ(rs[0].embeds[1].count, 6);
}

}  // namespace
}  // namespace sable::engine
