// Discovery against the fake plugins of tests/plugins: every way a file can fail is skipped with
// one warning naming the file and the reason, and require() reports it with the loaded plugins.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "core/plugin/registry.h"
#include "sable/sable.h"

namespace sable::plugin {
namespace {

namespace fs = std::filesystem;

fs::path fake_dir(const char* name) { return fs::path(SABLE_FAKE_PLUGIN_DIR) / name; }

std::unique_ptr<Registry> discover(std::vector<fs::path> dirs) {
  DiscoveryOptions options;
  options.dirs = std::move(dirs);
  options.include_env = false;
  return Registry::discover(options);
}

std::string require_error(const Registry& registry, SablePluginKind kind, std::string_view name) {
  try {
    registry.require(kind, name);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no exception";
}

// Exactly one warning that mentions both the file and the reason fragment.
void expect_one_warning(const Registry& registry, const std::string& file,
                        const std::string& reason) {
  ASSERT_EQ(registry.warnings().size(), 1u) << ::testing::PrintToString(registry.warnings());
  const std::string& warning = registry.warnings()[0];
  EXPECT_NE(warning.find(file), std::string::npos) << warning;
  EXPECT_NE(warning.find(reason), std::string::npos) << warning;
}

TEST(PluginRegistry, LoadsValidPluginsWithTheirTables) {
  auto registry = discover({fake_dir("good")});
  EXPECT_TRUE(registry->warnings().empty());
  ASSERT_EQ(registry->plugins().size(), 3u);
  const PluginInfo& llama = registry->require(SABLE_PLUGIN_MODEL, "fake_llama");
  EXPECT_EQ(llama.version, "0.0.1");
  EXPECT_EQ(llama.abi_major, SABLE_ABI_MAJOR);
  EXPECT_EQ(llama.description, "fake plugin for tests");
  ASSERT_EQ(llama.architectures.size(), 1u);
  EXPECT_EQ(llama.architectures[0], "LlamaForCausalLM");
  EXPECT_FALSE(llama.generic);
  EXPECT_NE(llama.file.find("sable-model-fake_llama.so"), std::string::npos);
  ASSERT_NE(llama.api_as<SableModelApi>(), nullptr);
  // The table is callable: the fake create reports "unsupported".
  SableModel* model = nullptr;
  EXPECT_EQ(llama.api_as<SableModelApi>()->create(nullptr, nullptr, &model), SABLE_ERR_UNSUPPORTED);

  EXPECT_TRUE(registry->require(SABLE_PLUGIN_MODEL, "fake_generic").generic);
  EXPECT_EQ(registry->of_kind(SABLE_PLUGIN_ATTENTION).size(), 1u);
  EXPECT_EQ(registry->of_kind(SABLE_PLUGIN_MODEL).size(), 2u);
  EXPECT_EQ(registry->find(SABLE_PLUGIN_ATTENTION, "fake_llama"), nullptr);
}

TEST(PluginRegistry, AbiMajorMismatchIsSkipped) {
  auto registry = discover({fake_dir("bad_abi")});
  EXPECT_TRUE(registry->plugins().empty());
  // The fake claims major 2 with the host's minor.
  const std::string claimed = "ABI 2." + std::to_string(SABLE_ABI_MINOR);
  expect_one_warning(*registry, "sable-model-future.so", claimed);
  const std::string error = require_error(*registry, SABLE_PLUGIN_MODEL, "future");
  EXPECT_NE(error.find("failed to load"), std::string::npos) << error;
  EXPECT_NE(error.find(claimed), std::string::npos) << error;
}

TEST(PluginRegistry, NullEntryIsSkipped) {
  auto registry = discover({fake_dir("null_entry")});
  EXPECT_TRUE(registry->plugins().empty());
  expect_one_warning(*registry, "sable-model-nullplug.so", "returned NULL");
  // The file name identifies the plugin even though its entry gave no name.
  const std::string error = require_error(*registry, SABLE_PLUGIN_MODEL, "nullplug");
  EXPECT_NE(error.find("returned NULL"), std::string::npos) << error;
}

TEST(PluginRegistry, NonPluginFilesAreSkipped) {
  auto registry = discover({fake_dir("not_plugin")});
  EXPECT_TRUE(registry->plugins().empty());
  ASSERT_EQ(registry->warnings().size(), 2u);
  // Sorted by file name: garbage.so first, then not_plugin.so.
  EXPECT_NE(registry->warnings()[0].find("garbage.so"), std::string::npos);
  EXPECT_NE(registry->warnings()[0].find("cannot be loaded"), std::string::npos);
  EXPECT_NE(registry->warnings()[1].find("not_plugin.so"), std::string::npos);
  EXPECT_NE(registry->warnings()[1].find("not a Sable plugin"), std::string::npos);
}

TEST(PluginRegistry, UnresolvedSymbolFailsAtLoad) {
  auto registry = discover({fake_dir("unresolved")});
  EXPECT_TRUE(registry->plugins().empty());
  expect_one_warning(*registry, "sable-model-unresolved.so", "sable_fake_symbol_that_does_not_exist");
}

TEST(PluginRegistry, DuplicateNameKeepsTheFirst) {
  auto registry = discover({fake_dir("duplicate")});
  ASSERT_EQ(registry->plugins().size(), 1u);
  EXPECT_EQ(registry->plugins()[0].architectures.at(0), "DupA");
  expect_one_warning(*registry, "b_dup.so", "duplicate plugin name 'dup'");
}

TEST(PluginRegistry, OlderMinorWithSmallerStructLoads) {
  auto registry = discover({fake_dir("older_minor")});
  EXPECT_TRUE(registry->warnings().empty());
  const PluginInfo& old = registry->require(SABLE_PLUGIN_MODEL, "old_minor");
  EXPECT_EQ(old.description, "");  // not covered by its struct_size: read as absent
  EXPECT_EQ(old.architectures.at(0), "OldForCausalLM");
}

TEST(PluginRegistry, StructsBelowTheAbi10MinimumAreRejected) {
  auto registry = discover({fake_dir("too_small")});
  EXPECT_TRUE(registry->plugins().empty());
  ASSERT_EQ(registry->warnings().size(), 2u);
  EXPECT_NE(registry->warnings()[0].find("sable-model-tiny.so"), std::string::npos);
  EXPECT_NE(registry->warnings()[0].find("SablePlugin struct_size"), std::string::npos);
  EXPECT_NE(registry->warnings()[1].find("sable-model-tiny_api.so"), std::string::npos);
  EXPECT_NE(registry->warnings()[1].find("SableModelApi struct_size"), std::string::npos);
  const std::string error = require_error(*registry, SABLE_PLUGIN_MODEL, "tiny_api");
  EXPECT_NE(error.find("SableModelApi struct_size"), std::string::npos) << error;
}

TEST(PluginRegistry, MissingPluginErrorListsLoadedPlugins) {
  auto registry = discover({fake_dir("good"), fake_dir("bad_abi")});
  const std::string error = require_error(*registry, SABLE_PLUGIN_ATTENTION, "flashinfer");
  EXPECT_NE(error.find("no attention plugin named 'flashinfer'"), std::string::npos) << error;
  EXPECT_NE(error.find("fake_llama (model)"), std::string::npos) << error;
  EXPECT_NE(error.find("fake_attn (attention)"), std::string::npos) << error;
  // Wrong kind is named as such.
  const std::string kind_error = require_error(*registry, SABLE_PLUGIN_ATTENTION, "fake_llama");
  EXPECT_NE(kind_error.find("is a model plugin"), std::string::npos) << kind_error;
}

TEST(PluginRegistry, MissingFolderWarnsAndSameFolderTwiceLoadsOnce) {
  auto registry = discover({fake_dir("good"), fake_dir("good"), fake_dir("no_such_folder")});
  EXPECT_EQ(registry->plugins().size(), 3u);
  expect_one_warning(*registry, "no_such_folder", "does not exist");
}

TEST(PluginRegistry, EnvironmentPathIsScanned) {
  const std::string path = fake_dir("no_such_folder").string() + "::" + fake_dir("older_minor").string();
  ASSERT_EQ(setenv("SABLE_PLUGIN_PATH", path.c_str(), 1), 0);
  DiscoveryOptions options;
  auto registry = Registry::discover(options);
  unsetenv("SABLE_PLUGIN_PATH");
  EXPECT_NE(registry->find(SABLE_PLUGIN_MODEL, "old_minor"), nullptr);
  EXPECT_EQ(registry->warnings().size(), 1u);  // the missing folder
}

TEST(PluginRegistry, AddRejectsNullAndAcceptsStaticPlugins) {
  auto registry = Registry::empty();
  EXPECT_FALSE(registry->add(nullptr, "<static>"));
  ASSERT_EQ(registry->warnings().size(), 1u);
  EXPECT_NE(registry->warnings()[0].find("<static>"), std::string::npos);
}

}  // namespace
}  // namespace sable::plugin
