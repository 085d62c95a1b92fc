// A request's images on the way to the scheduler (core/engine/image_request.h): the golden prompts
// of tests/golden/vl come out of placeholder expansion exactly as transformers' processor expands
// them, already expanded runs are kept, the image hash follows content (not the way the image was
// sent), preprocessor_config.json is honoured, and every mismatch or bad image is a
// ValidationError naming the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "core/engine/image_request.h"
#include "core/hf_config/hf_config.h"
#include "core/sampling/sampling_params.h"
#include "core/tokenizer/tokenizer.h"

namespace sable::engine {
namespace {

const std::string kVl = std::string(SABLE_TEST_DATA_DIR) + "/vl";
constexpr int32_t kPad = 151655;

const nlohmann::json& golden() {
  static const nlohmann::json g = nlohmann::json::parse(std::ifstream(kVl + "/golden.json"));
  return g;
}

const tokenizer::Tokenizer& tok() {
  static const auto t = tokenizer::Tokenizer::load(std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2_tok");
  return *t;
}

ImageSettings settings(const std::string& dir = kVl + "/model") {
  return image_settings(true, "Qwen2_5_VLForConditionalGeneration",
                        hf::HfConfig::load(kVl + "/model/config.json"), dir, &tok());
}

std::string file(const std::string& name) {
  return kVl + "/" + golden()["images"][name]["file"].get<std::string>();
}

// Golden case i's prompt with each image's run collapsed to the one placeholder token.
std::vector<int32_t> collapsed(size_t i) {
  std::vector<int32_t> out;
  for (const int32_t id : golden()["cases"][i]["prompt"].get<std::vector<int32_t>>())
    if (id != kPad || out.empty() || out.back() != kPad) out.push_back(id);
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    for (size_t k = 0; k < 4; ++k)  // output char k needs input byte k - 1 (the first two always)
      out += k < 2 || i + k - 1 < bytes.size() ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string field_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sampling::ValidationError& e) {
    return e.field() + ": " + e.what();
  }
  return "no error";
}

TEST(ImageRequest, PlaceholderTextComesFromTheTokenizer) {
  EXPECT_EQ(settings().placeholder, "<|vision_start|><|image_pad|><|vision_end|>");
  EXPECT_EQ(settings().image_token, kPad);
  // The chat template's text tokenizes to the collapsed golden prompt.
  const std::string text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                           "<|im_start|>user\n" + settings().placeholder +
                           "Describe this image.<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(tok().encode(text, true), collapsed(0));
}

TEST(ImageRequest, ExpansionMatchesTheProcessor) {
  for (size_t i = 0; i < 2; ++i) {
    std::vector<std::string> refs;
    for (const auto& n : golden()["cases"][i]["images"]) refs.push_back(file(n.get<std::string>()));
    std::vector<int32_t> ids = collapsed(i);
    const auto images = prepare_images(settings(), refs, ids);
    ASSERT_NE(images, nullptr);
    EXPECT_EQ(ids, golden()["cases"][i]["prompt"].get<std::vector<int32_t>>()) << "case " << i;
    ASSERT_EQ(images->images.size(), refs.size());
    EXPECT_EQ(images->prompt_len(), static_cast<int64_t>(ids.size()));
    for (const auto& im : images->images) {
      EXPECT_EQ(ids[static_cast<size_t>(im.row)], kPad);
      EXPECT_EQ(ids[static_cast<size_t>(im.row - 1)], 151652);  // <|vision_start|>
      EXPECT_EQ(im.tokens, im.grid[0] * im.grid[1] * im.grid[2] / 4);
    }
    EXPECT_EQ(images->pixel_values.size(),
              static_cast<size_t>(images->patch_dim) * (images->images.size() == 1 ? 48 : 140 + 24));
    // Already expanded ids are taken as they are.
    std::vector<int32_t> again = ids;
    prepare_images(settings(), refs, again);
    EXPECT_EQ(again, ids);
  }
}

TEST(ImageRequest, HashFollowsContentNotTheWayItWasSent) {
  std::ifstream in(file("a"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  auto ids_a = collapsed(0), ids_b = collapsed(0), ids_c = collapsed(0);
  const auto by_path = prepare_images(settings(), {file("a")}, ids_a);
  const auto by_base64 = prepare_images(settings(), {base64(bytes)}, ids_b);
  const auto other = prepare_images(settings(), {file("c")}, ids_c);
  EXPECT_EQ(by_path->images[0].hash, by_base64->images[0].hash);
  EXPECT_NE(by_path->images[0].hash, other->images[0].hash);
}

TEST(ImageRequest, PreprocessorConfigBoundsThePixels) {
  const auto dir = std::filesystem::temp_directory_path() / "sable_image_request_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "preprocessor_config.json")
      << R"({"min_pixels": 3136, "max_pixels": 3136, "image_mean": [0.5, 0.5, 0.5]})";
  const ImageSettings s = settings(dir.string());
  EXPECT_EQ(s.processor.max_pixels, 3136);
  EXPECT_DOUBLE_EQ(s.processor.mean[1], 0.5);
  auto ids = collapsed(0);
  const auto images = prepare_images(s, {file("b")}, ids);
  // 150 x 200 within 3136 pixels: smart_resize gives 28 x 56, a 2 x 4 patch grid, 2 tokens.
  EXPECT_EQ(images->images[0].grid[1], 2);
  EXPECT_EQ(images->images[0].grid[2], 4);
  EXPECT_EQ(images->images[0].tokens, 2);
  std::filesystem::remove_all(dir);
}

TEST(ImageRequest, MismatchesAndBadImagesNameTheField) {
  auto ids = collapsed(0);
  EXPECT_NE(field_of([&] { prepare_images(settings(), {file("a"), file("a")}, ids); })
                .find("image_data: image_data: 2 image(s) given but the prompt has 1"),
            std::string::npos);
  std::vector<int32_t> no_placeholder = {1, 2, 3};
  EXPECT_EQ(field_of([&] { prepare_images(settings(), {file("a")}, no_placeholder); }).rfind(
                "image_data:", 0), 0u);
  std::vector<int32_t> pads_only = {1, kPad, 2};
  EXPECT_EQ(field_of([&] { prepare_images(settings(), {}, pads_only); }).rfind("image_data:", 0), 0u);
  std::vector<int32_t> short_run = {1, kPad, kPad, 2};
  EXPECT_EQ(field_of([&] { prepare_images(settings(), {file("a")}, short_run); }).rfind(
                "input_ids:", 0), 0u);
  auto good = collapsed(0);
  const std::string corrupt = field_of([&] { prepare_images(settings(), {"bm90IGFuIGltYWdl"}, good); });
  EXPECT_NE(corrupt.find("image_data[0]"), std::string::npos) << corrupt;
  EXPECT_EQ(good, collapsed(0));  // untouched on failure
  ImageSettings text_only = image_settings(false, "LlamaForCausalLM",
                                           hf::HfConfig::load(kVl + "/model/config.json"), "", nullptr);
  EXPECT_NE(field_of([&] { prepare_images(text_only, {file("a")}, good); })
                .find("the model 'LlamaForCausalLM' takes no image input"),
            std::string::npos);
  std::vector<int32_t> plain = {1, 2};
  EXPECT_EQ(prepare_images(text_only, {}, plain), nullptr);
  EXPECT_EQ(prepare_images(settings(), {}, plain), nullptr);
}

}  // namespace
}  // namespace sable::engine
