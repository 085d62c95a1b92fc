// YAML files and command-line flags: precedence (defaults < YAML < flags) and every error path.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/config/cli_flags.h"
#include "core/config/server_config.h"

namespace sable::config {
namespace {

namespace fs = std::filesystem;

class ConfigSources : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sable_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) {
    const fs::path file = dir_ / "serve.yaml";
    std::ofstream(file) << text;
    return file.string();
  }
  std::string yaml_error(const std::string& text) {
    ServerConfig c;
    try {
      apply_yaml(c, text, "serve.yaml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }

  fs::path dir_;
};

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
}

TEST_F(ConfigSources, YamlSetsFieldsAndAliases) {
  ServerConfig c;
  apply_yaml(c,
             "model: /m\nport: 8001\nmodel_impl: native\nplugin_dirs: [/a, /b]\n"
             "disable_radix_cache: true\nmem_fraction_static: 0.5\napi_key: \"k\"\n",
             "serve.yaml");
  EXPECT_EQ(c.model_path, "/m");
  EXPECT_EQ(c.port, 8001);
  EXPECT_EQ(c.impl, "native");
  EXPECT_EQ(c.plugin_dirs, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_TRUE(c.disable_radix_cache);
  EXPECT_DOUBLE_EQ(c.mem_fraction_static, 0.5);
  EXPECT_EQ(c.api_key, "k");
}

TEST_F(ConfigSources, FlagsOverrideTheFileWhichOverridesDefaults) {
  const std::string file = write("port: 8001\nhost: 0.0.0.0\nschedule_policy: lpm\n"
                                 "disable_radix_cache: true\nplugin_dirs: [/from_yaml]\n");
  const std::vector<std::string> args{"--config", file, "--port", "9000",
                                      "--disable-radix-cache=false", "--plugin-dirs", "/x", "/y",
                                      "--model-impl", "transformers"};
  const ServerConfig c = parse_server_args(args);
  EXPECT_EQ(c.port, 9000);                // flag beats file
  EXPECT_EQ(c.host, "0.0.0.0");           // file beats default
  EXPECT_EQ(c.schedule_policy, "lpm");    // file only
  EXPECT_FALSE(c.disable_radix_cache);    // explicit false flag beats file's true
  EXPECT_EQ(c.plugin_dirs, (std::vector<std::string>{"/x", "/y"}));
  EXPECT_EQ(c.impl, "transformers");
  EXPECT_EQ(c.max_prefill_tokens, 16384);  // default
  EXPECT_EQ(c.config_file, file);
}

TEST_F(ConfigSources, FlagsAloneAndBooleanFlagsWithoutValue) {
  const std::vector<std::string> args{"--model", "/m", "--enable-metrics", "--port=1234"};
  const ServerConfig c = parse_server_args(args);
  EXPECT_EQ(c.model_path, "/m");
  EXPECT_TRUE(c.enable_metrics);
  EXPECT_EQ(c.port, 1234);
  EXPECT_TRUE(c.config_file.empty());
}

TEST_F(ConfigSources, FlagErrorsNameTheFlag) {
  try {
    parse_server_args(std::vector<std::string>{"--port", "99999"});
    FAIL();
  } catch (const ConfigError& e) {
    expect_contains(e.what(), "--port");
    expect_contains(e.what(), "1 to 65535");
  }
  try {
    parse_server_args(std::vector<std::string>{"--schedule-policy", "magic"});
    FAIL();
  } catch (const ConfigError& e) {
    expect_contains(e.what(), "schedule_policy");
    expect_contains(e.what(), "one of fcfs");
  }
  try {
    parse_server_args(std::vector<std::string>{"--no-such-flag", "1"});
    FAIL();
  } catch (const ConfigError& e) {
    expect_contains(e.what(), "no-such-flag");
  }
}

TEST_F(ConfigSources, YamlUnknownKeyNamesKeyAndLine) {
  const std::string error = yaml_error("port: 1\nmax_prefil_tokens: 10\n");
  expect_contains(error, "serve.yaml: line 2");
  expect_contains(error, "unknown key 'max_prefil_tokens'");
  expect_contains(error, "did you mean 'max_prefill_tokens'");
}

TEST_F(ConfigSources, YamlWrongTypes) {
  expect_contains(yaml_error("port: [1, 2]\n"), "'port': expected an integer, got a list");
  expect_contains(yaml_error("port: abc\n"), "expected an integer");
  expect_contains(yaml_error("host: {a: 1}\n"), "got a mapping");
  expect_contains(yaml_error("plugin_dirs: /one\n"), "expected a list of strings");
  expect_contains(yaml_error("plugin_dirs: [[a]]\n"), "expected a list of strings");
  expect_contains(yaml_error("api_key:\n"), "got nothing (null)");
  expect_contains(yaml_error("enable_metrics: 2\n"), "expected true or false");
}

TEST_F(ConfigSources, YamlRangeAndEnumErrors) {
  expect_contains(yaml_error("page_size: 0\n"), "'page_size': expected an integer from 1 to 4096");
  expect_contains(yaml_error("device: tpu\n"), "'device': expected one of auto, cpu, cuda");
}

TEST_F(ConfigSources, YamlShapeErrors) {
  EXPECT_EQ(yaml_error(""), "no error");
  expect_contains(yaml_error("- a\n- b\n"), "expected a mapping");
  expect_contains(yaml_error("port: [1\n"), "not valid YAML");
}

TEST_F(ConfigSources, MissingConfigFileIsAnError) {
  const std::vector<std::string> args{"--config", (dir_ / "absent.yaml").string()};
  try {
    parse_server_args(args);
    FAIL();
  } catch (const ConfigError& e) {
    expect_contains(e.what(), "absent.yaml");
  }
}

}  // namespace
}  // namespace sable::config
