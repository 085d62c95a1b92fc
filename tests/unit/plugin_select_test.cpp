// Model-plugin selection by architecture and impl (auto / native / sglang / transformers).
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/plugin/registry.h"

namespace sable::plugin {
namespace {

std::unique_ptr<Registry> discover(std::vector<std::filesystem::path> dirs) {
  DiscoveryOptions options;
  options.dirs = std::move(dirs);
  options.include_env = false;
  return Registry::discover(options);
}

const std::filesystem::path kGood = std::filesystem::path(SABLE_FAKE_PLUGIN_DIR) / "good";
const std::filesystem::path kOld = std::filesystem::path(SABLE_FAKE_PLUGIN_DIR) / "older_minor";

TEST(SelectModelPlugin, AutoPrefersNative) {
  auto registry = discover({kGood});
  const std::vector<std::string> archs{"LlamaForCausalLM"};
  ModelSelection s = select_model_plugin(*registry, archs, "auto");
  ASSERT_NE(s.plugin, nullptr);
  EXPECT_EQ(s.plugin->name, "fake_llama");
  EXPECT_NE(s.reason.find("natively"), std::string::npos) << s.reason;
  EXPECT_EQ(select_model_plugin(*registry, archs, "native").plugin->name, "fake_llama");
  EXPECT_EQ(select_model_plugin(*registry, archs, "sglang").plugin->name, "fake_llama");
}

TEST(SelectModelPlugin, AutoFallsBackToGeneric) {
  auto registry = discover({kGood});
  const std::vector<std::string> archs{"HeliumForCausalLM"};
  ModelSelection s = select_model_plugin(*registry, archs, "auto");
  ASSERT_NE(s.plugin, nullptr);
  EXPECT_EQ(s.plugin->name, "fake_generic");
  EXPECT_NE(s.reason.find("no native plugin claims HeliumForCausalLM"), std::string::npos);
}

TEST(SelectModelPlugin, TransformersForcesGeneric) {
  auto registry = discover({kGood});
  const std::vector<std::string> archs{"LlamaForCausalLM"};
  ModelSelection s = select_model_plugin(*registry, archs, "transformers");
  EXPECT_EQ(s.plugin->name, "fake_generic");
  EXPECT_NE(s.reason.find("forces"), std::string::npos);
}

TEST(SelectModelPlugin, SecondArchitectureCanMatch) {
  auto registry = discover({kGood});
  const std::vector<std::string> archs{"Unknown", "LlamaForCausalLM"};
  EXPECT_EQ(select_model_plugin(*registry, archs, "native").plugin->name, "fake_llama");
}

TEST(SelectModelPlugin, NativeFailsClearly) {
  auto registry = discover({kGood});
  const std::vector<std::string> archs{"HeliumForCausalLM"};
  try {
    select_model_plugin(*registry, archs, "native");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("HeliumForCausalLM"), std::string::npos) << what;
    EXPECT_NE(what.find("fake_llama"), std::string::npos) << what;
  }
}

TEST(SelectModelPlugin, NoGenericLoaded) {
  auto registry = discover({kOld});
  const std::vector<std::string> archs{"HeliumForCausalLM"};
  EXPECT_THROW(select_model_plugin(*registry, archs, "auto"), std::runtime_error);
  EXPECT_THROW(select_model_plugin(*registry, archs, "transformers"), std::runtime_error);
}

TEST(SelectModelPlugin, BadImplIsInvalidArgument) {
  auto registry = discover({kGood});
  const std::vector<std::string> archs{"LlamaForCausalLM"};
  EXPECT_THROW(select_model_plugin(*registry, archs, "vllm"), std::invalid_argument);
}

}  // namespace
}  // namespace sable::plugin
