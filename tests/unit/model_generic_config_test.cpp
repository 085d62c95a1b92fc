// The generic plugin refuses configs it cannot honour at create(), with an error naming the field
// and its value, instead of computing wrong numbers. Each case copies a golden checkpoint to a
// temporary folder, changes config.json fields and expects ModelRunner::create to throw a
// message containing that field (and value).
#include <filesystem>

#include "tests/unit/model_moe_golden.h"

namespace {

namespace fs = std::filesystem;
using namespace sable::golden_test;

struct Edit {
  std::string label;
  std::string base;     // golden model folder
  nlohmann::json patch;  // top-level keys to set
  std::string expect;   // substring of the error message
};

// A copy of the golden checkpoint with the patch's keys set in config.json.
fs::path edited_copy(const Edit& e) {
  const fs::path dir = fs::temp_directory_path() /
                       ("sable_generic_cfg_" + e.label + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"model.safetensors", "generation_config.json"})
    fs::copy_file(fs::path(model_dir(e.base)) / f, dir / f);
  std::ifstream in(fs::path(model_dir(e.base)) / "config.json");
  auto cfg = nlohmann::json::parse(in);
  for (const auto& [key, value] : e.patch.items()) cfg[key] = value;
  std::ofstream(dir / "config.json") << cfg.dump(2);
  return dir;
}

class GenericRefuses : public ::testing::TestWithParam<Edit> {};

TEST_P(GenericRefuses, CreateFailsNamingTheField) {
  const Edit& e = GetParam();
  const fs::path dir = edited_copy(e);
  std::string message;
  try {
    make_runner(dir.string(), "transformers", 16);
  } catch (const std::exception& ex) {
    message = ex.what();
  }
  fs::remove_all(dir);
  EXPECT_NE(message.find(e.expect), std::string::npos)
      << "error was: '" << message << "', expected it to mention '" << e.expect << "'";
}

INSTANTIATE_TEST_SUITE_P(
    Configs, GenericRefuses,
    ::testing::Values(
        Edit{"act", "helium", {{"hidden_act", "swiglu_oai"}}, "hidden_act 'swiglu_oai'"},
        Edit{"softcap", "gemma", {{"final_logit_softcapping", 30.0}}, "final_logit_softcapping"},
        Edit{"attn_softcap", "gemma", {{"attn_logit_softcapping", 50.0}}, "attn_logit_softcapping"},
        Edit{"alibi", "helium", {{"alibi", true}}, "alibi"},
        Edit{"parallel", "stablelm", {{"use_parallel_residual", true}}, "use_parallel_residual"},
        Edit{"qk_ln", "stablelm", {{"qk_layernorm", true}}, "qk_layernorm"},
        Edit{"rope", "helium", {{"rope_scaling", {{"rope_type", "mrope"}, {"factor", 2.0}}}}, "'mrope'"},
        Edit{"window_some", "qwen2", {{"use_sliding_window", true}, {"sliding_window", 32}, {"max_window_layers", 1}}, "max_window_layers"},
        Edit{"window_pattern", "helium", {{"sliding_window_pattern", 2}, {"sliding_window", 32}}, "sliding_window_pattern"},
        Edit{"scoring", "qwen2_moe", {{"scoring_func", "sigmoid"}}, "scoring_func = 'sigmoid'"}),
    [](const auto& info) { return info.param.label; });

// The same edit that the generic plugin refuses is accepted when harmless: a uniform window
// (Mistral style) is passed to attention as the model's sliding window.
TEST(GenericConfig, UniformSlidingWindowIsDeclared) {
  const Edit e{"uniform", "helium", {{"sliding_window", 4096}}, ""};
  const fs::path dir = edited_copy(e);
  auto r = make_runner(dir.string(), "transformers", 16);
  EXPECT_EQ(r->info().sliding_window, 4096);
  fs::remove_all(dir);
}

}  // namespace
