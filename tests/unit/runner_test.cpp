// core/runner: the model host's config and weight functions, the KV pool, the runner's input
// checks, checkpoint errors (missing / unexpected / misshapen tensors named), and random models
// made from a config (make-random-model) that load and run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/hf_config/hf_config.h"
#include "core/plugin/registry.h"
#include "core/runner/kv_pool.h"
#include "core/runner/model_host.h"
#include "core/runner/model_runner.h"
#include "core/runner/random_model.h"
#include "core/weights/safetensors.h"
#include "core/weights/safetensors_writer.h"

namespace {

namespace fs = std::filesystem;
using sable::runner::ModelRunner;

const sable::plugin::Registry& registry() {
  static const auto reg = [] {
    sable::plugin::DiscoveryOptions opt;
    opt.dirs = {SABLE_PLUGIN_DIR};
    opt.include_env = false;
    return sable::plugin::Registry::discover(opt);
  }();
  return *reg;
}

fs::path temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("sable_runner_test_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

const fs::path kQwen2 = fs::path(SABLE_TEST_DATA_DIR) / "models" / "qwen2";

std::unique_ptr<ModelRunner> load(const fs::path& dir, int64_t num_pages = 64,
                                  int32_t page_size = 4) {
  sable::runner::RunnerOptions opt;
  opt.model_path = dir;
  opt.page_size = page_size;
  opt.num_pages = num_pages;
  opt.registry = &registry();
  return ModelRunner::create(opt);
}

std::string load_error(const fs::path& dir) {
  try {
    load(dir);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// --- ModelHost config lookups through the C table, as a plugin sees them.
TEST(RunnerModelHost, ConfigLookupsFollowTheAbi) {
  const auto config = sable::hf::HfConfig::parse(
      R"({"hidden_size": 64, "name": "abcdefgh", "flag": true, "list": [1, 2, 3],
          "nested": {"x": 2.5}, "nothing": null})",
      "test");
  sable::runner::RecordingSource source;
  auto memory = sable::runner::make_lazy_zero_memory();
  sable::runner::ModelHost host(config, source, *memory, nullptr, {});
  const SableHostApi* api = host.api();
  SableHostHandle* h = host.handle();
  int64_t i = 0;
  EXPECT_EQ(api->config_int(h, "hidden_size", &i), SABLE_OK);
  EXPECT_EQ(i, 64);
  EXPECT_EQ(api->config_int(h, "missing", &i), SABLE_ERR_NOT_FOUND);
  EXPECT_EQ(api->config_int(h, "nothing", &i), SABLE_ERR_NOT_FOUND);
  EXPECT_EQ(api->config_int(h, "name", &i), SABLE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(host.take_error().find("name"), std::string::npos);
  double d = 0;
  EXPECT_EQ(api->config_float(h, "nested.x", &d), SABLE_OK);
  EXPECT_DOUBLE_EQ(d, 2.5);
  int32_t b = 0;
  EXPECT_EQ(api->config_bool(h, "flag", &b), SABLE_OK);
  EXPECT_EQ(b, 1);
  char buf[4];
  size_t len = 0;
  EXPECT_EQ(api->config_string(h, "name", buf, sizeof(buf), &len), SABLE_OK);
  EXPECT_EQ(len, 8u);
  EXPECT_STREQ(buf, "abc");  // truncated, NUL-terminated
  int64_t list[2];
  size_t count = 0;
  EXPECT_EQ(api->config_int_list(h, "list", list, 2, &count), SABLE_OK);
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(list[1], 2);
  EXPECT_EQ(api->config_has(h, "nested.x"), 1);
  EXPECT_EQ(api->config_has(h, "nested.y"), 0);
}

TEST(RunnerKvPool, LayersHaveThePagedShape) {
  auto memory = sable::runner::make_cpu_memory();
  sable::runner::KvGeometry g{3, 2, 8, 16, 5, SABLE_DTYPE_F32};
  sable::runner::KvPool pool(g, *memory);
  ASSERT_EQ(pool.layers().size(), 3u);
  const SableTensor& k = pool.layers()[1].k;
  EXPECT_EQ(k.ndim, 4);
  EXPECT_EQ(k.shape[0], 5);
  EXPECT_EQ(k.shape[1], 16);
  EXPECT_EQ(k.shape[2], 2);
  EXPECT_EQ(k.shape[3], 8);
  EXPECT_NE(pool.layers()[1].k.data, pool.layers()[1].v.data);
  EXPECT_EQ(pool.bytes_per_token(), 2 * 3 * 2 * 8 * 4);
  g.num_pages = 0;
  EXPECT_THROW(sable::runner::KvPool(g, *memory), std::invalid_argument);
}

// --- Runner input checks name the sequence and the problem.
TEST(RunnerForward, BadInputIsRejectedWithAReason) {
  auto runner = load(kQwen2, /*num_pages=*/8, /*page_size=*/4);
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  const std::vector<int32_t> one_page = {3};
  const std::vector<int32_t> two_pages = {3, 5};
  const std::vector<int32_t> bad_page = {3, 8};
  auto expect_error = [&](ModelRunner::Sequence s, const std::string& needle) {
    try {
      runner->forward(std::span(&s, 1));
      ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({tokens, 0, one_page, false}, "needs 2 pages");
  expect_error({tokens, 0, bad_page, false}, "page 8 outside");
  const std::vector<int32_t> negative_page = {3, -1};  // the first bad one is named
  expect_error({tokens, 0, negative_page, false}, "page -1 outside the pool [0, 8)");
  expect_error({{}, 0, two_pages, false}, "no new tokens");
  const std::vector<int32_t> big = {1, 1000};
  expect_error({big, 0, two_pages, false}, "id 1000 outside the vocabulary");
  expect_error({tokens, 510, two_pages, false}, "context length is 512");
  // And a valid forward still works afterwards.
  ModelRunner::Sequence ok{tokens, 0, two_pages, true};
  const auto out = runner->forward(std::span(&ok, 1));
  EXPECT_EQ(out.rows, 5);
  EXPECT_EQ(out.vocab, 1000);
}

// --- Checkpoint problems: copy the qwen2 golden model with one change each.
struct TensorCopy {
  std::string name;
  int32_t dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};

std::vector<TensorCopy> golden_tensors() {
  auto file = sable::weights::SafetensorsFile::open(kQwen2 / "model.safetensors");
  std::vector<TensorCopy> out;
  for (const auto& t : file->tensors()) {
    auto bytes = file->bytes(t);
    out.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(bytes.begin(), bytes.end())});
  }
  return out;
}

fs::path write_variant(const std::string& name, const std::vector<TensorCopy>& tensors) {
  const fs::path dir = temp_dir(name);
  fs::copy_file(kQwen2 / "config.json", dir / "config.json");
  sable::weights::SafetensorsWriter w;
  for (const auto& t : tensors) w.add(t.name, t.dtype, t.shape, t.data);
  w.write(dir / "model.safetensors");
  return dir;
}

TEST(RunnerCheckpoint, MissingTensorIsNamed) {
  auto tensors = golden_tensors();
  std::erase_if(tensors,
                [](const TensorCopy& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  const std::string err = load_error(write_variant("missing", tensors));
  EXPECT_NE(err.find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << err;
}

TEST(RunnerCheckpoint, UnexpectedTensorIsNamed) {
  auto tensors = golden_tensors();
  tensors.push_back({"model.layers.0.self_attn.extra_proj.weight",
                     SABLE_DTYPE_BF16,
                     {4},
                     std::vector<std::byte>(8)});
  const std::string err = load_error(write_variant("unexpected", tensors));
  EXPECT_NE(err.find("model.layers.0.self_attn.extra_proj.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("unexpected"), std::string::npos) << err;
}

TEST(RunnerCheckpoint, WrongShapeIsNamed) {
  auto tensors = golden_tensors();
  for (auto& t : tensors) {
    if (t.name != "model.layers.0.self_attn.o_proj.weight") continue;
    t.shape = {32, 128};  // same bytes, wrong shape
  }
  const std::string err = load_error(write_variant("shape", tensors));
  EXPECT_NE(err.find("model.layers.0.self_attn.o_proj.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("[32, 128]"), std::string::npos) << err;
  EXPECT_NE(err.find("[64, 64]"), std::string::npos) << err;
}

// --- make-random-model: a small Qwen2-shaped config becomes a checkpoint the runner loads.
TEST(RunnerRandomModel, QwenShapedConfigLoadsAndRuns) {
  const fs::path dir = temp_dir("random_qwen");
  const fs::path config = dir / "src_config.json";
  std::ofstream(config) << R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_size": 48, "intermediate_size": 80, "num_attention_heads": 6,
    "num_key_value_heads": 2, "num_hidden_layers": 3, "vocab_size": 300,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16"})";
  sable::runner::RandomModelOptions opt;
  opt.config_json = config;
  opt.out_dir = dir / "model";
  opt.seed = 7;
  opt.max_shard_bytes = 40000;  // forces several shards + an index
  const auto summary = sable::runner::write_random_model(opt, registry());
  EXPECT_EQ(summary.plugin, "qwen");
  // embed + final norm + per layer (2 norms, q/k/v/o, q/k/v bias, gate/up/down) = 2 + 3*12.
  EXPECT_EQ(summary.num_tensors, 2u + 3u * 12u);
  EXPECT_GT(summary.files.size(), 1u);
  EXPECT_TRUE(fs::exists(opt.out_dir / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(opt.out_dir / "config.json"));

  auto runner = load(opt.out_dir, 16, 4);
  const std::vector<int32_t> tokens = {5, 17, 299, 0};
  const std::vector<int32_t> pages = {9, 2};
  ModelRunner::Sequence s{tokens, 0, pages, true};
  const auto out = runner->forward(std::span(&s, 1));
  ASSERT_EQ(out.rows, 4);
  ASSERT_EQ(out.vocab, 300);
  double sum_abs = 0;
  for (float v : out.logits) {
    ASSERT_TRUE(std::isfinite(v));
    sum_abs += std::abs(v);
  }
  EXPECT_GT(sum_abs, 0.0);  // random weights give non-zero logits
}

// The plugins refuse a config they cannot serve with a message naming the field.
TEST(RunnerModelConfig, BadConfigIsRejectedNamingTheField) {
  auto error_for = [](const std::string& json) -> std::string {
    try {
      sable::runner::record_model_tensors(sable::hf::HfConfig::parse(json, "test"), registry());
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  const std::string base = R"("architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
    "num_hidden_layers": 2, "vocab_size": 100)";
  EXPECT_EQ(error_for("{" + base + "}"), "");
  EXPECT_NE(error_for("{" + base + R"(, "num_key_value_heads": 3})").find("num_key_value_heads"),
            std::string::npos);
  EXPECT_NE(error_for("{" + base + R"(, "hidden_act": "swiglu_x"})").find("hidden_act"),
            std::string::npos);
  const std::string no_vocab = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
    "num_hidden_layers": 2})";
  EXPECT_NE(error_for(no_vocab).find("vocab_size"), std::string::npos);
}

TEST(RunnerRandomModel, RecordedTensorsMatchTheGoldenCheckpoint) {
  // What the qwen plugin asks for is exactly what the real qwen2 checkpoint holds.
  const auto config = sable::hf::HfConfig::load(kQwen2 / "config.json");
  const auto recorded = sable::runner::record_model_tensors(config, registry());
  auto file = sable::weights::SafetensorsFile::open(kQwen2 / "model.safetensors");
  ASSERT_EQ(recorded.size(), file->tensors().size());
  for (const auto& t : file->tensors()) {
    auto it = std::find_if(recorded.begin(), recorded.end(),
                           [&](const auto& r) { return r.name == t.name; });
    ASSERT_NE(it, recorded.end()) << t.name;
    EXPECT_EQ(it->shape, t.shape) << t.name;
  }
}

}  // namespace
