// The GGUF reader against references made by llama.cpp's gguf-py (scripts/make_gguf_golden.py):
// every tensor of every file in tests/golden/gguf dequantizes bit for bit to gguf-py's numpy
// result (FNV-1a 64 of the float32 bytes in reference.json, llama q/k permutation undone), the
// metadata becomes the expected HF config, and the tokenizers built from GGUF vocabularies (made
// from the golden tokenizers, gpt2-style and SentencePiece-style) give the HF tokenizer's ids.
// Malformed files (every truncation, bad magic/version/type/alignment, unknown architecture) stop
// with a message naming the field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/gguf/ggml_types.h"
#include "core/gguf/gguf_file.h"
#include "core/gguf/gguf_model.h"
#include "core/gguf/gguf_tokenizer.h"
#include "core/hf_config/hf_config.h"
#include "core/tokenizer/tokenizer.h"
#include "sable/tensor.h"
#include "tests/unit/gguf_builder.h"

namespace {

namespace fs = std::filesystem;
using sable::gguf::GgufError;
using sable::gguf::GgufModel;
using nlohmann::json;

const fs::path kDir = fs::path(SABLE_TEST_DATA_DIR) / "gguf";

std::string fnv1a64(const std::vector<float>& v) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

json reference() {
  std::ifstream in(kDir / "reference.json");
  return json::parse(in);
}

std::vector<float> read_f32(const GgufModel& m, const std::string& name) {
  int64_t n = 1;
  for (int64_t d : m.shape(name)) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  m.read(name, SABLE_DTYPE_F32, -1, 0, 0, v.data());
  return v;
}

TEST(GgufDequant, EveryTensorMatchesGgufPyBitForBit) {
  const json ref = reference();
  ASSERT_GE(ref.size(), 10u);
  std::set<std::string> types_seen;
  for (const auto& [file, entry] : ref.items()) {
    auto model = GgufModel::open(kDir / file);
    EXPECT_EQ(model->names().size(), entry["tensors"].size()) << file;
    for (const auto& [name, t] : entry["tensors"].items()) {
      ASSERT_TRUE(model->has(name)) << file << " " << name;
      EXPECT_EQ(sable::gguf::type_traits(model->gguf_tensor(name).type)->name,
                t["type"].get<std::string>());
      EXPECT_EQ(fnv1a64(read_f32(*model, name)), t["fnv1a64"].get<std::string>())
          << file << " " << name << " (" << t["type"].get<std::string>() << ")";
      types_seen.insert(t["type"].get<std::string>());
    }
  }
  for (const char* t : {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K",
                        "Q4_K", "Q5_K", "Q6_K"})
    EXPECT_TRUE(types_seen.count(t)) << "no reference tensor of type " << t;
}

// Slices (rows, columns) and bf16 output agree with the whole f32 read.
TEST(GgufDequant, SlicesAndDtypesAgreeWithWholeReads) {
  auto model = GgufModel::open(kDir / "kquant.gguf");
  const std::string name = "model.layers.0.self_attn.q_proj.weight";  // Q2_K, permuted rows
  const auto shape = model->shape(name);
  ASSERT_EQ(shape, (std::vector<int64_t>{256, 256}));
  const auto whole = read_f32(*model, name);
  std::vector<float> rows(64 * 256), cols(256 * 32);
  model->read(name, SABLE_DTYPE_F32, 0, 96, 64, rows.data());
  model->read(name, SABLE_DTYPE_F32, 1, 200, 32, cols.data());
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < 256; ++c) ASSERT_EQ(rows[r * 256 + c], whole[(96 + r) * 256 + c]);
  for (int r = 0; r < 256; ++r)
    for (int c = 0; c < 32; ++c) ASSERT_EQ(cols[r * 32 + c], whole[r * 256 + 200 + c]);
  std::vector<uint16_t> bf16(whole.size());
  model->read(name, SABLE_DTYPE_BF16, -1, 0, 0, bf16.data());
  for (size_t i = 0; i < whole.size(); i += 97) {
    uint32_t bits = static_cast<uint32_t>(bf16[i]) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    ASSERT_NEAR(f, whole[i], std::abs(whole[i]) / 128 + 1e-30);
  }
  EXPECT_THROW(model->read(name, SABLE_DTYPE_F32, 0, 250, 10, rows.data()), GgufError);
}

TEST(GgufConfig, MetadataBecomesTheHfConfig) {
  auto llama = GgufModel::open(kDir / "llama-f32.gguf");
  const auto c = sable::hf::HfConfig::parse(llama->config_json(), "llama");
  EXPECT_EQ(c.architectures(), std::vector<std::string>{"LlamaForCausalLM"});
  EXPECT_EQ(c.hidden_size(), 64);
  EXPECT_EQ(c.num_hidden_layers(), 3);
  EXPECT_EQ(c.num_key_value_heads(), 2);
  EXPECT_EQ(c.intermediate_size(), 176);
  EXPECT_EQ(c.vocab_size(), 1000);
  EXPECT_FALSE(c.tie_word_embeddings());
  EXPECT_EQ(c.rope().type, "longrope");  // llama 3 scaling as per-frequency divisors
  EXPECT_EQ(c.rope().short_factor.size(), 8u);
  EXPECT_EQ(llama->architecture(), "llama");
  EXPECT_NE(llama->quantization().find("F32"), std::string::npos);
  EXPECT_FALSE(llama->has("rope_freqs.weight"));

  auto qwen3 = GgufModel::open(kDir / "qwen3-bf16.gguf");
  const auto q = sable::hf::HfConfig::parse(qwen3->config_json(), "qwen3");
  EXPECT_EQ(q.architectures(), std::vector<std::string>{"Qwen3ForCausalLM"});
  EXPECT_EQ(q.head_dim(), 32);
  EXPECT_TRUE(q.tie_word_embeddings());  // no output.weight
  EXPECT_TRUE(qwen3->has("model.layers.1.self_attn.k_norm.weight"));
}

TEST(GgufConfig, FolderWithOneGgufIsAModel) {
  const fs::path dir = fs::temp_directory_path() / ("sable_gguf_dir_" + std::to_string(getpid()));
  fs::create_directories(dir);
  EXPECT_FALSE(sable::gguf::is_gguf_model(dir));
  fs::copy_file(kDir / "qwen2-q8_0.gguf", dir / "m.gguf", fs::copy_options::overwrite_existing);
  EXPECT_TRUE(sable::gguf::is_gguf_model(dir));
  EXPECT_EQ(sable::gguf::gguf_path(dir), dir / "m.gguf");
  EXPECT_TRUE(sable::gguf::is_gguf_model(dir / "m.gguf"));
  EXPECT_FALSE(sable::gguf::is_gguf_model(fs::path(SABLE_TEST_DATA_DIR) / "models" / "qwen2"));
  EXPECT_TRUE(sable::gguf::is_gguf_model(dir / "missing.gguf"));
  EXPECT_THROW(GgufModel::open(dir / "missing.gguf"), std::exception);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Malformed files

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    sable::gguf::parse_header(std::as_bytes(std::span(bytes)), "test.gguf");
  } catch (const GgufError& e) {
    return e.what();
  }
  return "";
}

TEST(GgufHeader, EveryTruncationIsAnErrorNamingWhatIsMissing) {
  std::ifstream in(kDir / "qwen3-q5_1.gguf", std::ios::binary);
  const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), {});
  ASSERT_EQ(error_of(file), "");
  // Every prefix up to the end of the header, then a sample of data cut points.
  const size_t header_end = sable::gguf::parse_header(std::as_bytes(std::span(file)), "x").data_offset;
  for (size_t n = 0; n < file.size(); n += n < header_end + 64 ? 1 : 4099) {
    const std::string e = error_of(std::vector<uint8_t>(file.begin(), file.begin() + n));
    ASSERT_NE(e.find("truncated"), std::string::npos) << "cut at " << n << ": '" << e << "'";
  }
}

TEST(GgufHeader, BadFieldsAreNamed) {
  using sable::test::GgufBuilder;
  auto good = [] {
    GgufBuilder b;
    b.kv_string("general.architecture", "llama");
    b.tensor("a.weight", {32, 2}, sable::gguf::kQ8_0);
    return b;
  };
  EXPECT_EQ(error_of(good().bytes()), "");
  GgufBuilder magic = good();
  magic.magic = 0x12345678;
  EXPECT_NE(error_of(magic.bytes()).find("magic"), std::string::npos);
  GgufBuilder version = good();
  version.version = 1;
  EXPECT_NE(error_of(version.bytes()).find("version 1"), std::string::npos);
  GgufBuilder type;
  type.tensor("x.weight", {32}, 99);
  EXPECT_NE(error_of(type.bytes()).find("tensor 'x.weight' has unknown ggml type 99"),
            std::string::npos);
  GgufBuilder block;
  block.tensor("y.weight", {48}, sable::gguf::kQ4_0);
  EXPECT_NE(error_of(block.bytes()).find("not a multiple of Q4_0's block size 32"),
            std::string::npos);
  GgufBuilder value;
  value.raw_kv("bad.key", 77, {});
  EXPECT_NE(error_of(value.bytes()).find("metadata 'bad.key' has unknown value type 77"),
            std::string::npos);
  GgufBuilder dup;
  dup.kv_u32("k", 1);
  dup.kv_u32("k", 2);
  EXPECT_NE(error_of(dup.bytes()).find("'k' appears twice"), std::string::npos);
  GgufBuilder align = good();
  align.kv_u32("general.alignment", 24);
  EXPECT_NE(error_of(align.bytes()).find("general.alignment"), std::string::npos);
  GgufBuilder dims;
  dims.tensor("z", {0}, sable::gguf::kF32);
  EXPECT_NE(error_of(dims.bytes()).find("tensor 'z' has a bad dimension 0"), std::string::npos);
  GgufBuilder huge;
  huge.raw_kv("tokenizer.ggml.tokens", 9, {8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0});
  EXPECT_NE(error_of(huge.bytes()).find("claims"), std::string::npos);
}

TEST(GgufModelErrors, ArchitectureTypesAndFieldsAreNamed) {
  using sable::test::GgufBuilder;
  const fs::path dir = fs::temp_directory_path() / ("sable_gguf_err_" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto open_error = [&](GgufBuilder& b) -> std::string {
    const fs::path p = dir / "m.gguf";
    b.write(p);
    try {
      GgufModel::open(p);
    } catch (const GgufError& e) {
      return e.what();
    }
    return "";
  };
  GgufBuilder arch;
  arch.kv_string("general.architecture", "gptneox");
  EXPECT_NE(open_error(arch).find("general.architecture 'gptneox' is not supported"),
            std::string::npos);
  GgufBuilder none;
  EXPECT_NE(open_error(none).find("metadata 'general.architecture' is missing"), std::string::npos);
  GgufBuilder q8_1;
  q8_1.kv_string("general.architecture", "llama");
  q8_1.kv_u32("llama.attention.head_count", 2);
  q8_1.tensor("token_embd.weight", {32, 4}, sable::gguf::kQ8_1);
  EXPECT_NE(open_error(q8_1).find("tensor 'token_embd.weight' has type Q8_1"), std::string::npos);
  GgufBuilder mistyped;
  mistyped.kv_string("general.architecture", "llama");
  mistyped.kv_string("llama.attention.head_count", "eight");
  EXPECT_NE(open_error(mistyped).find("'llama.attention.head_count' is a string, expected an integer"),
            std::string::npos);
  GgufBuilder no_layers;
  no_layers.kv_string("general.architecture", "qwen2");
  no_layers.kv_u32("qwen2.attention.head_count", 2);
  no_layers.kv_u32("qwen2.embedding_length", 64);
  no_layers.tensor("token_embd.weight", {64, 4}, sable::gguf::kF32);
  EXPECT_NE(open_error(no_layers).find("metadata 'qwen2.block_count' is missing"),
            std::string::npos);
  GgufBuilder flat_embed;
  flat_embed.kv_string("general.architecture", "qwen2");
  for (const char* k : {"qwen2.attention.head_count", "qwen2.embedding_length", "qwen2.block_count",
                        "qwen2.feed_forward_length"})
    flat_embed.kv_u32(k, 64);
  flat_embed.tensor("token_embd.weight", {64}, sable::gguf::kF32);
  EXPECT_NE(open_error(flat_embed).find("tensor 'token_embd.weight' must have 2 dims"),
            std::string::npos);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Tokenizers from GGUF vocabularies

// The vocab-only GGUF files, made once per build tree by the script (into a temporary folder
// renamed into place, so parallel test processes never see a half-written set).
fs::path vocab_dir() {
  const fs::path dir = fs::path(SABLE_BINARY_DIR) / "gguf_vocab";
  if (fs::exists(dir / "qwen3.gguf")) return dir;
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(getpid());
  const std::string cmd = "python3 " + std::string(SABLE_SOURCE_DIR) +
                          "/scripts/make_gguf_golden.py vocab " + tmp.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << " failed (needs python3 with the gguf package)";
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) fs::remove_all(tmp);
  return dir;
}

class GgufTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufTokenizer, IdsEqualTheHfTokenizer) {
  const std::string name = GetParam();
  auto file = sable::gguf::GgufFile::open(vocab_dir() / (name + ".gguf"));
  auto tok = sable::gguf::load_tokenizer(*file);
  std::ifstream in(fs::path(SABLE_TEST_DATA_DIR) / "tokenizers" / name / "vectors.json");
  const json v = json::parse(in);
  int checked = 0;
  for (const auto& c : v.at("encode")) {
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(tok->encode(text, false), c.at("ids").get<std::vector<int32_t>>()) << name << ": " << text;
    EXPECT_EQ(tok->encode(text, true), c.at("ids_with_special").get<std::vector<int32_t>>())
        << name << " with special tokens: " << text;
    EXPECT_EQ(tok->decode(c.at("ids").get<std::vector<int32_t>>(), false, false),
              c.at("decoded").get<std::string>())
        << name << ": " << text;
    ++checked;
  }
  EXPECT_GT(checked, 10);
  std::ifstream cfg_in(fs::path(SABLE_TEST_DATA_DIR) / "tokenizers" / name / "tokenizer_config.json");
  const json cfg = json::parse(cfg_in);
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string())
    EXPECT_EQ(tok->chat_template(), cfg["chat_template"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, GgufTokenizer,
                         ::testing::Values("llama3", "qwen3", "llama2"));

TEST(GgufTokenizerErrors, UnsupportedModelAndPreAreNamed) {
  using sable::test::GgufBuilder;
  auto error = [](GgufBuilder& b) -> std::string {
    const fs::path p = fs::temp_directory_path() / ("sable_gguf_tok_" + std::to_string(getpid()) + ".gguf");
    b.write(p);
    try {
      sable::gguf::tokenizer_files(*sable::gguf::GgufFile::open(p));
    } catch (const GgufError& e) {
      fs::remove(p);
      return e.what();
    }
    fs::remove(p);
    return "";
  };
  GgufBuilder bert;
  bert.kv_string("tokenizer.ggml.model", "bert");
  bert.kv_strings("tokenizer.ggml.tokens", {"a"});
  EXPECT_NE(error(bert).find("'tokenizer.ggml.model' = 'bert' is not supported"), std::string::npos);
  GgufBuilder pre;
  pre.kv_string("tokenizer.ggml.model", "gpt2");
  pre.kv_string("tokenizer.ggml.pre", "jais");
  pre.kv_strings("tokenizer.ggml.tokens", {"a"});
  pre.kv_strings("tokenizer.ggml.merges", {});
  EXPECT_NE(error(pre).find("'tokenizer.ggml.pre' = 'jais'"), std::string::npos);
  GgufBuilder scores;
  scores.kv_string("tokenizer.ggml.model", "llama");
  scores.kv_strings("tokenizer.ggml.tokens", {"a", "b"});
  EXPECT_NE(error(scores).find("tokenizer.ggml.scores"), std::string::npos);
}

}  // namespace
