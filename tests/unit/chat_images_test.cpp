// OpenAI chat image_url parts (server/chat_images.h): taken out in order as image references, the
// message flattened to text with the model's placeholder where each image was; `detail` checked;
// a model without image input refuses them naming the part; messages without images untouched.
#include <gtest/gtest.h>

#include "server/chat_images.h"
#include "server/http_error.h"

namespace sable::server {
namespace {

using nlohmann::ordered_json;

const std::string kPad = "<|vision_start|><|image_pad|><|vision_end|>";

TEST(ChatImages, PartsBecomePlaceholdersInOrder) {
  const auto messages = ordered_json::parse(R"([
    {"role": "system", "content": "sys"},
    {"role": "user", "content": [
      {"type": "text", "text": "Picture 1: "},
      {"type": "image_url", "image_url": {"url": "http://x/a.png", "detail": "low"}},
      {"type": "text", "text": "Picture 2: "},
      {"type": "image_url", "image_url": "data:image/png;base64,AAAA"},
      {"type": "text", "text": "Which?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "kept as a list"}]}])");
  std::vector<std::string> images;
  const ordered_json out = take_chat_images(messages, kPad, images);
  EXPECT_EQ(images, (std::vector<std::string>{"http://x/a.png", "data:image/png;base64,AAAA"}));
  EXPECT_EQ(out[1]["content"], "Picture 1: " + kPad + "Picture 2: " + kPad + "Which?");
  EXPECT_EQ(out[0], messages[0]);
  EXPECT_EQ(out[2], messages[2]);  // no image part: not rewritten
}

TEST(ChatImages, WithoutImagesNothingChanges) {
  const auto messages = ordered_json::parse(
      R"([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])");
  std::vector<std::string> images;
  EXPECT_EQ(take_chat_images(messages, "", images), messages);
  EXPECT_TRUE(images.empty());
}

std::string error_of(const std::string& messages, const std::string& placeholder) {
  std::vector<std::string> images;
  try {
    take_chat_images(ordered_json::parse(messages), placeholder, images);
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.what();
  }
  return "no error";
}

TEST(ChatImages, BadPartsAndTextOnlyModelsAre400) {
  const std::string image = R"([{"role": "user", "content": [{"type": "image_url",
                                 "image_url": {"url": "a.png"}}]}])";
  EXPECT_NE(error_of(image, "").find("messages[0].content[0]: this model takes no image input"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"role": "user", "content": [{"type": "image_url",
                          "image_url": {"url": "a.png", "detail": "huge"}}]}])", kPad)
                .find("detail must be auto, low or high"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}])",
                     kPad)
                .find("needs \"image_url\""),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"role": "user", "content": [{"type": "image_url", "image_url": "a.png"},
                          {"type": "input_audio", "input_audio": {}}]}])", kPad)
                .find("text and image_url parts only"),
            std::string::npos);
}

}  // namespace
}  // namespace sable::server
