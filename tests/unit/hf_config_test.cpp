// HfConfig: typed dotted-key access, HF defaults, every golden config.json, and the rope merge of
// classic (rope_theta + rope_scaling with rope_type or type) and new (rope_parameters) spellings.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>

#include "core/hf_config/hf_config.h"

namespace sable::hf {
namespace {

namespace fs = std::filesystem;
const fs::path kModels = fs::path(SABLE_TEST_DATA_DIR) / "models";

template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> fragments) {
  try {
    fn();
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    for (const auto& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << msg;
  }
}

TEST(HfConfig, GoldenLlama) {
  const HfConfig c = HfConfig::load(kModels / "llama" / "config.json");
  EXPECT_EQ(c.architectures(), std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(c.model_type(), "llama");
  EXPECT_EQ(c.hidden_size(), 64);
  EXPECT_EQ(c.num_hidden_layers(), 3);
  EXPECT_EQ(c.num_attention_heads(), 4);
  EXPECT_EQ(c.num_key_value_heads(), 2);
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_EQ(c.vocab_size(), 1000);
  EXPECT_EQ(c.intermediate_size(), 176);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps(), 1e-5);
  EXPECT_EQ(c.max_position_embeddings(), 512);
  EXPECT_FALSE(c.tie_word_embeddings());
  EXPECT_FALSE(c.attention_bias());
  EXPECT_EQ(c.dtype(), "bfloat16");
  const RopeParams r = c.rope();
  EXPECT_EQ(r.type, "llama3");
  EXPECT_DOUBLE_EQ(r.theta, 500000.0);
  EXPECT_DOUBLE_EQ(r.factor, 8.0);
  EXPECT_DOUBLE_EQ(r.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(r.high_freq_factor, 4.0);
  EXPECT_EQ(r.original_max_position_embeddings, 64);
  EXPECT_EQ(c.rotary_dim(), 16);
  EXPECT_DOUBLE_EQ(*c.get_float("rope_scaling.factor"), 8.0);
  EXPECT_FALSE(c.has("pad_token_id"));  // JSON null counts as absent
  EXPECT_FALSE(c.get_int("pad_token_id").has_value());
  EXPECT_NE(c.dump().find("\"llama3\""), std::string::npos);
}

TEST(HfConfig, OtherGoldenModels) {
  const HfConfig qwen2 = HfConfig::load(kModels / "qwen2" / "config.json");
  EXPECT_TRUE(qwen2.tie_word_embeddings());
  EXPECT_EQ(qwen2.head_dim(), qwen2.hidden_size() / qwen2.num_attention_heads());
  EXPECT_EQ(qwen2.rope().type, "default");
  EXPECT_DOUBLE_EQ(qwen2.rope().theta, 1e6);
  const HfConfig qwen3 = HfConfig::load(kModels / "qwen3" / "config.json");
  EXPECT_EQ(qwen3.head_dim(), 32);
  EXPECT_NE(qwen3.head_dim(), qwen3.hidden_size() / qwen3.num_attention_heads());
  // Every golden model's config parses, with a positive theta and a sensible rotary dim.
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(kModels)) {
    if (!fs::exists(entry.path() / "config.json")) continue;
    const HfConfig c = HfConfig::load(entry.path() / "config.json");
    const std::string m = entry.path().filename().string();
    EXPECT_FALSE(c.architectures().empty()) << m;
    EXPECT_GT(c.rope().theta, 0.0) << m;
    EXPECT_GT(c.head_dim(), 0) << m;
    EXPECT_GT(c.rotary_dim(), 0) << m;
    EXPECT_LE(c.rotary_dim(), c.head_dim()) << m;
    EXPECT_EQ(c.rotary_dim() % 2, 0) << m;
    ++seen;
  }
  EXPECT_GE(seen, 8);
  // partial_rotary_factor inside rope_parameters (phi3: 0.75, stablelm: 0.25) when present.
  for (const auto& [m, prf] : {std::pair<const char*, double>{"phi3", 0.75}, {"stablelm", 0.25}}) {
    if (!fs::exists(kModels / m / "config.json")) continue;
    const HfConfig c = HfConfig::load(kModels / m / "config.json");
    EXPECT_DOUBLE_EQ(c.rope().partial_rotary_factor, prf) << m;
    EXPECT_EQ(c.rotary_dim(), static_cast<int32_t>(c.head_dim() * prf)) << m;
  }
}

TEST(HfConfig, ClassicAndNewRopeKeysAgree) {
  const HfConfig classic = HfConfig::parse(
      R"({"rope_theta": 20000, "max_position_embeddings": 4096,
          "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024,
                           "beta_fast": 16, "mscale": 1.0, "mscale_all_dim": 0.5}})", "classic");
  const HfConfig modern = HfConfig::parse(
      R"({"max_position_embeddings": 4096,
          "rope_parameters": {"rope_type": "yarn", "rope_theta": 20000.0, "factor": 4,
                              "original_max_position_embeddings": 1024, "beta_fast": 16.0,
                              "mscale": 1, "mscale_all_dim": 0.5}})", "modern");
  for (const HfConfig* c : {&classic, &modern}) {
    const RopeParams r = c->rope();
    EXPECT_EQ(r.type, "yarn");
    EXPECT_DOUBLE_EQ(r.theta, 20000.0);
    EXPECT_DOUBLE_EQ(r.factor, 4.0);
    EXPECT_EQ(r.original_max_position_embeddings, 1024);
    EXPECT_DOUBLE_EQ(r.beta_fast, 16.0);
    EXPECT_DOUBLE_EQ(r.beta_slow, 1.0);
    EXPECT_DOUBLE_EQ(*r.mscale, 1.0);
    EXPECT_DOUBLE_EQ(*r.mscale_all_dim, 0.5);
    EXPECT_FALSE(r.attention_factor.has_value());
    EXPECT_TRUE(r.truncate);
  }
  // rope_type beats type; "su" is longrope; partial_rotary_factor at the top level.
  const HfConfig phi = HfConfig::parse(
      R"({"hidden_size": 64, "num_attention_heads": 2, "partial_rotary_factor": 0.5,
          "max_position_embeddings": 8192, "original_max_position_embeddings": 1024,
          "rope_scaling": {"type": "su", "short_factor": [1, 1.5, 2, 2, 1, 1, 1, 1],
                           "long_factor": [2, 2, 2, 2, 3, 3, 3, 3]}})", "phi");
  const RopeParams r = phi.rope();
  EXPECT_EQ(r.type, "longrope");
  EXPECT_DOUBLE_EQ(r.factor, 8.0);  // derived: 8192 / 1024
  EXPECT_EQ(r.short_factor.size(), 8u);
  EXPECT_EQ(phi.rotary_dim(), 16);
  EXPECT_EQ(phi.head_dim(), 32);
  // No rope keys at all: default, theta 10000.
  const RopeParams none = HfConfig::parse("{}", "empty").rope();
  EXPECT_EQ(none.type, "default");
  EXPECT_DOUBLE_EQ(none.theta, 10000.0);
  // rope_scaling null with a top-level theta.
  const RopeParams null_scaling =
      HfConfig::parse(R"({"rope_theta": 5e5, "rope_scaling": null})", "n").rope();
  EXPECT_EQ(null_scaling.type, "default");
  EXPECT_DOUBLE_EQ(null_scaling.theta, 5e5);
}

TEST(HfConfig, TypedAccessAndErrorsNameTheKey) {
  const HfConfig c = HfConfig::parse(
      R"({"a": {"b": {"c": 3}}, "f": 2.5, "i": 7, "fi": 4.0, "s": "x", "t": true,
          "l": [1, 2, 3], "bad_l": [1, "2"], "n": null, "torch_dtype": "float16"})", "test.json");
  EXPECT_EQ(*c.get_int("a.b.c"), 3);
  EXPECT_FALSE(c.get_int("a.b.d"));
  EXPECT_FALSE(c.get_int("a.x.c"));
  EXPECT_FALSE(c.get_int("s.c"));
  EXPECT_DOUBLE_EQ(*c.get_float("i"), 7.0);
  EXPECT_EQ(*c.get_int("fi"), 4);
  EXPECT_EQ(*c.get_string("s"), "x");
  EXPECT_TRUE(*c.get_bool("t"));
  EXPECT_EQ(*c.get_int_list("l"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(c.get_bool("n"));
  EXPECT_TRUE(c.has("a.b"));
  EXPECT_EQ(c.dtype(), "float16");
  EXPECT_EQ(c.source(), "test.json");
  expect_error([&] { c.get_int("f"); }, {"test.json", "'f'", "integer"});
  expect_error([&] { c.get_int("s"); }, {"'s'"});
  expect_error([&] { c.get_float("t"); }, {"'t'", "number"});
  expect_error([&] { c.get_bool("i"); }, {"'i'"});
  expect_error([&] { c.get_string("a"); }, {"'a'", "string"});
  expect_error([&] { c.get_int_list("bad_l"); }, {"'bad_l'"});
  expect_error([&] { c.hidden_size(); }, {"test.json", "'hidden_size'", "missing"});
  expect_error([&] { HfConfig::parse("{\"a\": ", "broken.json"); }, {"broken.json", "malformed"});
  expect_error([&] { HfConfig::parse("[]", "arr.json"); }, {"arr.json", "not a JSON object"});
  expect_error([&] { HfConfig::load("/nonexistent/config.json"); }, {"/nonexistent/config.json"});
}

TEST(HfConfig, RopeErrorsNameTheField) {
  expect_error([] { HfConfig::parse(R"({"rope_scaling": {"rope_type": "mystery"}})", "c").rope(); },
               {"'rope_scaling.rope_type'", "mystery"});
  expect_error([] { HfConfig::parse(R"({"rope_parameters": {"type": "linear"}})", "c").rope(); },
               {"'rope_parameters.factor'"});
  expect_error([] {
    HfConfig::parse(R"({"rope_scaling": {"rope_type": "llama3", "factor": 8,
                        "low_freq_factor": 1, "original_max_position_embeddings": 64}})", "c").rope();
  }, {"'rope_scaling.high_freq_factor'"});
  expect_error([] { HfConfig::parse(R"({"rope_scaling": {"type": "su"}})", "c").rope(); },
               {"'rope_scaling.short_factor'"});
  expect_error([] { HfConfig::parse(R"({"rope_scaling": {"type": "linear", "factor": "2"}})", "c").rope(); },
               {"'rope_scaling.factor'", "number"});
  expect_error([] { HfConfig::parse(R"({"rope_scaling": 3})", "c").rope(); }, {"'rope_scaling'"});
  expect_error([] {
    HfConfig::parse(R"({"rope_parameters": {"full_attention": {"rope_type": "default"},
                        "sliding_attention": {"rope_type": "default"}}})", "c").rope();
  }, {"per-layer"});
}

}  // namespace
}  // namespace sable::hf
