// Golden tests: encode/decode of the real Qwen3, Llama 3 and Llama 2 tokenizers, and of the encoder
// tokenizers scripts/make_encoder_tokenizers.py made (xlmr_unigram: SentencePiece Unigram with a
// Precompiled charsmap, XLM-R's structure; bert_wordpiece: BERT's WordPiece), must equal the
// vectors HF produced (tests/golden/tokenizers/*/vectors.json), text pairs included.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/tokenizer/tokenizer.h"

namespace sable::tokenizer {
namespace {

using nlohmann::json;

const std::string kDir = std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/";

json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

class GoldenTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTokenizer, EncodeAndDecodeMatchHf) {
  auto tok = Tokenizer::load(kDir + GetParam());
  const json vectors = read_json(kDir + GetParam() + "/vectors.json");
  ASSERT_GT(vectors.at("encode").size(), 10u);
  for (const auto& row : vectors.at("encode")) {
    const std::string text = row.at("text").get<std::string>();
    const auto ids = row.at("ids").get<std::vector<int32_t>>();
    const auto ids_special = row.at("ids_with_special").get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(text, false), ids) << "text: " << text;
    EXPECT_EQ(tok->encode(text, true), ids_special) << "text: " << text;
    EXPECT_EQ(tok->decode(ids, false, false), row.at("decoded").get<std::string>())
        << "text: " << text;
    EXPECT_EQ(tok->decode(ids_special, true), row.at("decoded_skip_special").get<std::string>())
        << "text: " << text;
  }
  if (!vectors.contains("pairs")) return;
  for (const auto& row : vectors.at("pairs")) {
    const auto p = tok->encode_pair(row.at("first").get<std::string>(),
                                    row.at("second").get<std::string>());
    EXPECT_EQ(p.ids, row.at("ids").get<std::vector<int32_t>>()) << row.dump();
    EXPECT_EQ(p.type_ids, row.at("type_ids").get<std::vector<int32_t>>()) << row.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(All, GoldenTokenizer,
                         ::testing::Values("qwen3", "llama3", "llama2", "xlmr_unigram",
                                           "bert_wordpiece"));

TEST(TokenizerMetadata, Qwen3) {
  auto tok = Tokenizer::load(kDir + "qwen3");
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->eos_ids(), std::vector<int32_t>{151645});
  EXPECT_EQ(tok->pad_id(), std::optional<int32_t>(151643));
  EXPECT_FALSE(tok->bos_id().has_value());
  EXPECT_EQ(tok->vocab_size(), 151669);
  EXPECT_EQ(tok->model_vocab_size(), 151643);  // HF's tokenizer.vocab_size: no added tokens
  EXPECT_TRUE(tok->is_special(151644));
  EXPECT_FALSE(tok->is_special(151657));  // <tool_call> is added but not special
  EXPECT_FALSE(tok->is_special(9707));
  EXPECT_EQ(tok->token_to_id("<|im_start|>"), std::optional<int32_t>(151644));
  EXPECT_EQ(tok->token_to_id("Hello"), std::optional<int32_t>(9707));
  EXPECT_EQ(tok->token_bytes(220), " ");             // "Ġ"
  EXPECT_EQ(tok->token_bytes(198), "\n");            // "Ċ"
  EXPECT_EQ(tok->token_bytes(151645), "<|im_end|>");
  EXPECT_NE(tok->chat_template().find("<|im_start|>"), std::string::npos);
  // Ids without a token (a model's padded vocab rows) decode to nothing, as in HF.
  EXPECT_EQ(tok->decode(std::vector<int32_t>{9707, 151900, -5}, false), "Hello");
}

TEST(TokenizerMetadata, Llama2) {
  auto tok = Tokenizer::load(kDir + "llama2");
  EXPECT_EQ(tok->bos_id(), std::optional<int32_t>(1));
  EXPECT_EQ(tok->bos_token(), "<s>");
  EXPECT_EQ(tok->eos_ids(), std::vector<int32_t>{2});
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->model_vocab_size(), 32000);  // <unk> <s> </s> are vocab entries too
  EXPECT_EQ(tok->token_bytes(13), "\n");             // <0x0A>
  EXPECT_EQ(tok->token_bytes(22557), " Hello");      // ▁Hello
  EXPECT_EQ(tok->encode("hi <s> there</s>x", false),
            (std::vector<int32_t>{12014, 28705, 1, 736, 2, 28744}));
  // HF fast decode runs special tokens through the decoder chain.
  EXPECT_EQ(tok->decode(std::vector<int32_t>{1, 22557, 2, 22557}, false, false),
            "<s> Hello</s> Hello");
  // Invalid byte-fallback runs become one U+FFFD per byte.
  EXPECT_EQ(tok->decode(std::vector<int32_t>{231, 192}, false), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerMetadata, SpacesBetweenSpecialTokens) {
  auto tok = Tokenizer::load(kDir + "qwen3");
  std::vector<int32_t> ids = {151644, 872, 198, 6023, 151645};
  EXPECT_EQ(tok->decode(ids, false, false), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(tok->decode(ids, false, true), "<|im_start|> user\nhi <|im_end|>");
  EXPECT_EQ(tok->decode(ids, true, true), "user\nhi");
}

TEST(TokenizerErrors, UnsupportedComponentIsNamed) {
  const std::string base =
      R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},)";
  try {
    Tokenizer::from_json(base + R"("normalizer":{"type":"Nmt"}})");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Nmt"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::from_json(R"({"model":{"type":"WordPiece","vocab":{}}})");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("WordPiece"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::from_json("{not json"), std::runtime_error);
  EXPECT_THROW(Tokenizer::load("/nonexistent/dir"), std::runtime_error);
  auto tok = Tokenizer::from_json(base + R"("pre_tokenizer":null})");
  EXPECT_EQ(tok->encode("ab", false), std::vector<int32_t>{2});
}

TEST(TokenizerConfig, GenerationConfigAndTemplates) {
  const std::string tj = R"({"model":{"type":"BPE","vocab":{"a":0,"<s>":1,"</s>":2,"<e>":3},
      "merges":[]},"added_tokens":[{"id":1,"content":"<s>","special":true},
      {"id":2,"content":"</s>","special":true},{"id":3,"content":"<e>","special":true}]})";
  const std::string cfg = R"({"bos_token":{"content":"<s>"},"eos_token":"</s>",
      "add_bos_token":true,"chat_template":[{"name":"tool_use","template":"T"},
      {"name":"default","template":"D"}]})";
  auto tok = Tokenizer::from_json(tj, cfg, R"({"eos_token_id":[3,2]})");
  EXPECT_EQ(tok->eos_ids(), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(tok->chat_template(), "D");
  EXPECT_EQ(tok->bos_token(), "<s>");
  EXPECT_EQ(tok->encode("a</s>", true), (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(tok->encode("a", false), (std::vector<int32_t>{0}));
}

}  // namespace
}  // namespace sable::tokenizer

namespace sable::tokenizer {
namespace {

// The end-to-end Qwen2 model folder: its texts' ids and the decoded greedy continuations.
TEST(TokenizerGoldenModel, Qwen2TokFolder) {
  const std::string dir = std::string(SABLE_TEST_DATA_DIR) + "/models/qwen2_tok";
  auto tok = Tokenizer::load(dir);
  const json g = read_json(dir + "/golden.json");
  const auto& texts = g.at("texts");
  ASSERT_FALSE(texts.empty());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = g.at("ids")[i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->encode(texts[i].get<std::string>(), true), ids) << texts[i];
    const auto greedy = g.at("greedy_ids")[i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->decode(greedy, true), g.at("greedy_text")[i].get<std::string>()) << i;
  }
  EXPECT_FALSE(tok->eos_ids().empty());
}

}  // namespace
}  // namespace sable::tokenizer
