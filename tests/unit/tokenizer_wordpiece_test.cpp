// BERT tokenizers (WordPiece model, BertNormalizer, BertPreTokenizer, WordPiece decoder,
// BertProcessing) and the pair templates of encode_pair, on a small tokenizer.json built here with
// the structure of bert-base-uncased's. Every expected value was produced by HF tokenizers 0.23.3
// on the same tokenizer.json: lowercase and accents stripped, punctuation split off, CJK
// characters alone, greedy longest "##" pieces, a word with an unknown part becomes [UNK].
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"

using sable::tokenizer::Tokenizer;
using nlohmann::json;

namespace {

constexpr int32_t kUnk = 100, kCls = 101, kSep = 102;

json bert_json(json post_processor) {
  json vocab = {{"[PAD]", 0}, {"[UNK]", kUnk}, {"[CLS]", kCls}, {"[SEP]", kSep}};
  const std::vector<std::string> words = {"hello", "world", "un", "##aff", "##able", ",", "!",
                                          "the", "cafe", "中", "a", "##b", "ab", "'", "s", "."};
  for (size_t i = 0; i < words.size(); ++i) vocab[words[i]] = static_cast<int32_t>(200 + i);
  json added = json::array();
  for (const auto& [tok, id] : std::vector<std::pair<std::string, int32_t>>{
           {"[PAD]", 0}, {"[UNK]", kUnk}, {"[CLS]", kCls}, {"[SEP]", kSep}}) {
    added.push_back({{"id", id}, {"content", tok}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer",
           {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
            {"strip_accents", nullptr}, {"lowercase", true}}},
          {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
          {"post_processor", post_processor},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
          {"model",
           {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
            {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
}

json bert_processing() {
  return {{"type", "BertProcessing"}, {"sep", {"[SEP]", kSep}}, {"cls", {"[CLS]", kCls}}};
}

int32_t id(const Tokenizer& t, const char* token) { return *t.token_to_id(token); }

}  // namespace

TEST(WordPiece, NormalizesSplitsAndPiecesLikeBert) {
  auto t = Tokenizer::from_json(bert_json(bert_processing()).dump());
  EXPECT_EQ(t->encode("Hello, WORLD!", true),
            (std::vector<int32_t>{kCls, id(*t, "hello"), id(*t, ","), id(*t, "world"),
                                  id(*t, "!"), kSep}));
  EXPECT_EQ(t->encode("unaffable", false),
            (std::vector<int32_t>{id(*t, "un"), id(*t, "##aff"), id(*t, "##able")}));
  // Longest piece first: "ab" beats "a" + "##b".
  EXPECT_EQ(t->encode("ab", false), (std::vector<int32_t>{id(*t, "ab")}));
  // A word with an unmatched part is one [UNK]; accents are stripped with lowercase.
  EXPECT_EQ(t->encode("unxyz Café", false), (std::vector<int32_t>{kUnk, id(*t, "cafe")}));
  // CJK characters stand alone; control characters vanish; tabs are spaces.
  EXPECT_EQ(t->encode("中国\tthe\x01", false),
            (std::vector<int32_t>{id(*t, "中"), kUnk, id(*t, "the")}));
  EXPECT_EQ(t->encode("", true), (std::vector<int32_t>{kCls, kSep}));
}

TEST(WordPiece, DecodesPiecesAndCleansUp) {
  auto t = Tokenizer::from_json(bert_json(bert_processing()).dump());
  const auto ids = t->encode("Hello, world! unaffable the cafe's.", true);
  // HF cleans up per token, so " '" and " s" keep their spaces (as HF tokenizers 0.23 decodes).
  EXPECT_EQ(t->decode(ids, /*skip_special_tokens=*/true), "hello, world! unaffable the cafe ' s.");
  EXPECT_EQ(t->decode(ids, false, false), "[CLS] hello, world! unaffable the cafe ' s. [SEP]");
}

TEST(PairTemplate, BertProcessingGivesTokenTypes) {
  auto t = Tokenizer::from_json(bert_json(bert_processing()).dump());
  const auto p = t->encode_pair("hello", "the world");
  EXPECT_EQ(p.ids, (std::vector<int32_t>{kCls, id(*t, "hello"), kSep, id(*t, "the"),
                                         id(*t, "world"), kSep}));
  EXPECT_EQ(p.type_ids, (std::vector<int32_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(p.truncated, 0);
  // Truncation cuts the second text from its end.
  const auto cut = t->encode_pair("hello", "the world", 5);
  EXPECT_EQ(cut.ids, (std::vector<int32_t>{kCls, id(*t, "hello"), kSep, id(*t, "the"), kSep}));
  EXPECT_EQ(cut.truncated, 1);
  // A first text that leaves no room is an error naming its length.
  EXPECT_THROW(t->encode_pair("hello world", "the", 4), std::invalid_argument);
}

TEST(PairTemplate, RobertaAndTemplateProcessing) {
  json roberta = {{"type", "RobertaProcessing"}, {"sep", {"[SEP]", kSep}}, {"cls", {"[CLS]", kCls}},
                  {"trim_offsets", true}, {"add_prefix_space", false}};
  auto r = Tokenizer::from_json(bert_json(roberta).dump());
  const auto p = r->encode_pair("hello", "world");
  EXPECT_EQ(p.ids, (std::vector<int32_t>{kCls, id(*r, "hello"), kSep, kSep, id(*r, "world"), kSep}));
  EXPECT_EQ(p.type_ids, (std::vector<int32_t>(6, 0)));
  json tmpl = {{"type", "TemplateProcessing"},
               {"single", json::array({{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
               {"pair", json::array({{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                     {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 1}}}},
                                     {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
               {"special_tokens",
                {{"[CLS]", {{"id", "[CLS]"}, {"ids", {kCls}}, {"tokens", {"[CLS]"}}}},
                 {"[SEP]", {{"id", "[SEP]"}, {"ids", {kSep}}, {"tokens", {"[SEP]"}}}}}}};
  auto t = Tokenizer::from_json(bert_json(tmpl).dump());
  const auto q = t->encode_pair("hello", "world");
  EXPECT_EQ(q.ids, (std::vector<int32_t>{id(*t, "hello"), kSep, id(*t, "world")}));
  EXPECT_EQ(q.type_ids, (std::vector<int32_t>{0, 1, 1}));
  // No post-processor: the texts follow each other, types 0 then 1.
  auto n = Tokenizer::from_json(bert_json(nullptr).dump());
  const auto plain = n->encode_pair("hello", "world");
  EXPECT_EQ(plain.ids, (std::vector<int32_t>{id(*n, "hello"), id(*n, "world")}));
  EXPECT_EQ(plain.type_ids, (std::vector<int32_t>{0, 1}));
}

TEST(WordPiece, MissingUnkTokenIsAnError) {
  json j = bert_json(bert_processing());
  j["model"]["unk_token"] = "[NOPE]";
  EXPECT_THROW(Tokenizer::from_json(j.dump()), std::runtime_error);
}
