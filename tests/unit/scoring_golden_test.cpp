// Scoring models on the CPU against the transformers reference (tests/golden/models):
//   llama_reward  LlamaForSequenceClassification: the score of the last token (/classify);
//   xlmr_rerank   XLMRobertaForSequenceClassification: the cross-encoder score of <s> (/v1/rerank);
//   bert_embed    BertModel: CLS and mean pooling of the last hidden state (/encode).
// Each is matched within the golden tolerance (relative error 1e-4 of the largest reference
// value), alone and in one batch of all prompts. Also: token types reach the encoder, pooling
// overrides, Matryoshka dimensions, and the model-kind rules (score and encoder models need
// is_embedding; an encoder runs a prompt whole). Last, return_hidden_states on the qwen2 golden
// checkpoint against its reference `last_hidden_i`.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "tests/unit/scoring_golden.h"

using namespace sable::engine;

namespace {

using sable::scoring_golden::config;
using sable::scoring_golden::inputs_of;
using sable::scoring_golden::prompts;
using sable::scoring_golden::reference;

constexpr double kMaxRelErr = 1e-4;

double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - want[i]));
    ref = std::max(ref, std::abs(static_cast<double>(want[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

std::vector<float> normalized(std::vector<float> v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(s));
  return v;
}

// Every prompt alone and all in one batch, against the reference tensors `prefix`_i.
void expect_golden(Engine& e, const std::string& model, const std::string& prefix,
                   bool normalize_reference = false) {
  const auto ps = prompts(model);
  const auto batch = e.embed(inputs_of(ps));
  ASSERT_EQ(batch.size(), ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<float> want = reference(model, prefix + "_" + std::to_string(i));
    if (normalize_reference) want = normalized(want);
    const auto alone = e.embed(inputs_of({ps[i]}));
    EXPECT_LE(rel_err(alone[0].embedding, want), kMaxRelErr) << model << " prompt " << i;
    EXPECT_LE(rel_err(batch[i].embedding, want), kMaxRelErr) << model << " batched prompt " << i;
    EXPECT_EQ(batch[i].prompt_tokens, static_cast<int64_t>(ps[i].size()));
  }
}

}  // namespace

TEST(ScoringGolden, LlamaRewardScoresTheLastToken) {
  Engine e(config("llama_reward"));
  EXPECT_EQ(e.model_kind(), Engine::ModelKind::kScore);
  EXPECT_EQ(e.model_info().output_kind, SABLE_MODEL_OUTPUT_SCORE);
  EXPECT_EQ(e.model_info().num_labels, 1);
  expect_golden(e, "llama_reward", "score");
}

TEST(ScoringGolden, XlmRobertaCrossEncoderScoresTheFirstToken) {
  Engine e(config("xlmr_rerank"));
  EXPECT_EQ(e.model_kind(), Engine::ModelKind::kScore);
  EXPECT_EQ(e.model_info().bidirectional, 1);
  // max_position_embeddings 130 minus RoBERTa's padding offset (pad_token_id 1 + 1).
  EXPECT_EQ(e.context_length(), 128);
  expect_golden(e, "xlmr_rerank", "score");
}

TEST(ScoringGolden, BertClsAndMeanPooling) {
  auto c = config("bert_embed");
  c.pooling = "cls";
  c.pooling_normalize = "false";
  {
    Engine e(c);
    EXPECT_EQ(e.model_kind(), Engine::ModelKind::kEmbedding);
    expect_golden(e, "bert_embed", "cls");
  }
  c.pooling = "mean";
  {
    Engine e(c);
    expect_golden(e, "bert_embed", "mean");
  }
  // auto: no sentence-transformers files, so SGLang's encoder default: CLS, normalised.
  c.pooling = "auto";
  c.pooling_normalize = "auto";
  Engine e(c);
  expect_golden(e, "bert_embed", "cls", /*normalize_reference=*/true);
}

TEST(ScoringGolden, TokenTypesReachTheEncoder) {
  Engine e(config("bert_embed"));
  const auto ps = prompts("bert_embed");
  EmbedInput plain, zeros, pair;
  plain.input_ids = zeros.input_ids = pair.input_ids = ps[1];
  zeros.token_types.assign(ps[1].size(), 0);
  pair.token_types.assign(ps[1].size(), 0);
  for (size_t j = ps[1].size() / 2; j < ps[1].size(); ++j) pair.token_types[j] = 1;
  const auto r = e.embed({plain, zeros, pair});
  EXPECT_LE(rel_err(r[1].embedding, r[0].embedding), 1e-6);
  EXPECT_GT(rel_err(r[2].embedding, r[0].embedding), 1e-3);
  EmbedInput bad = plain;
  bad.token_types = {0, 1};
  EXPECT_THROW(e.embed({bad}), ValidationError);
}

TEST(ScoringGolden, EncoderLimits) {
  auto c = config("xlmr_rerank");
  c.chunked_prefill_size = 16;  // one forward: 16 + 8 tokens
  Engine e(c);
  const auto ps = prompts("xlmr_rerank");
  // Prompt 2 (42 tokens) does not fit one forward, and an encoder cannot chunk.
  EXPECT_THROW(e.embed(inputs_of({ps[2]})), std::invalid_argument);
  EXPECT_EQ(e.embed(inputs_of({ps[0]})).size(), 1u);
  // Longer than the context (128 positions).
  EmbedInput longer;
  longer.input_ids.assign(129, 5);
  EXPECT_THROW(e.embed({longer}), ValidationError);
}

TEST(ScoringGolden, DimensionsNeedAMatryoshkaModel) {
  Engine e(config("bert_embed"));
  EmbedInput in;
  in.input_ids = prompts("bert_embed")[0];
  in.dimensions = 16;
  try {
    e.embed({in});
    FAIL() << "dimensions on a model without matryoshka_dimensions";
  } catch (const ValidationError& err) {
    EXPECT_NE(std::string(err.what()).find("matryoshka"), std::string::npos) << err.what();
  }
}

TEST(ScoringGolden, ScoreAndEncoderModelsNeedIsEmbedding) {
  for (const char* model : {"llama_reward", "bert_embed"}) {
    auto c = config(model);
    c.is_embedding = false;
    try {
      Engine e(c);
      FAIL() << model << " served for generation";
    } catch (const std::exception& err) {
      EXPECT_NE(std::string(err.what()).find("--is-embedding"), std::string::npos) << err.what();
    }
  }
}

// return_hidden_states on the golden qwen2 checkpoint: the prefill entry holds every prompt
// position and its last row is the reference `last_hidden_i`; each decode step adds the row of the
// token it fed back, which equals the last prefill row of the prompt extended by that token.
TEST(HiddenStatesGolden, Qwen2PrefillAndDecodeRows) {
  auto c = config("qwen2");
  c.is_embedding = false;
  c.enable_return_hidden_states = true;
  Engine e(c);
  const auto ps = prompts("qwen2");
  const int32_t h = e.model_info().hidden_size;
  for (size_t i = 0; i < ps.size(); ++i) {
    GenerateInput in;
    in.input_ids = ps[i];
    in.params.max_new_tokens = 3;
    in.params.temperature = 0.0;
    in.return_hidden_states = true;
    const auto r = e.generate(std::vector<GenerateInput>{in}).at(0);
    const auto& hs = r.meta_info.hidden_states;
    ASSERT_EQ(hs.size(), 1u + 2u) << "one prefill entry, then one per fed-back output token";
    ASSERT_TRUE(hs[0].prefill);
    ASSERT_EQ(hs[0].rows, static_cast<int32_t>(ps[i].size()));
    ASSERT_EQ(hs[0].hidden_size, h);
    const std::vector<float> last(hs[0].values.end() - h, hs[0].values.end());
    EXPECT_LE(rel_err(last, reference("qwen2", "last_hidden_" + std::to_string(i))), kMaxRelErr)
        << "prompt " << i;
    EXPECT_FALSE(hs[1].prefill);
    EXPECT_EQ(hs[1].rows, 1);
    // The first decode row is the hidden state at the first output token's position.
    GenerateInput ext = in;
    ext.input_ids.push_back(r.output_ids.at(0));
    ext.params.max_new_tokens = 1;
    const auto r2 = e.generate(std::vector<GenerateInput>{ext}).at(0);
    const auto& p2 = r2.meta_info.hidden_states.at(0);
    const std::vector<float> ext_last(p2.values.end() - h, p2.values.end());
    EXPECT_LE(rel_err(hs[1].values, ext_last), 1e-4) << "prompt " << i;
  }
  // Without the flag, the request is refused naming it.
  auto off = config("qwen2");
  off.is_embedding = false;
  Engine plain(off);
  GenerateInput in;
  in.input_ids = ps[0];
  in.return_hidden_states = true;
  EXPECT_THROW(plain.submit(in), ValidationError);
}
