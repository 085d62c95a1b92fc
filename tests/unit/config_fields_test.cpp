// The field table: defaults, parsing of each type, every validation error path, JSON and docs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/config/server_config.h"

namespace sable::config {
namespace {

// The ConfigError message of set_field, or "no error".
std::string set_error(std::string_view key, std::string_view text) {
  ServerConfig config;
  try {
    set_field(config, key, text, "test");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
}

TEST(ConfigFields, DefaultsFollowSglang) {
  const ServerConfig c;
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 30000);
  EXPECT_EQ(c.tp_size, 1);
  EXPECT_EQ(c.max_prefill_tokens, 16384);
  EXPECT_EQ(c.schedule_policy, "fcfs");
  EXPECT_DOUBLE_EQ(c.schedule_conservativeness, 1.0);
  EXPECT_EQ(c.page_size, 1);
  EXPECT_EQ(c.random_seed, -1);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.impl, "auto");
  EXPECT_EQ(c.weight_version, "default");
  EXPECT_EQ(c.stream_interval, 1);
  EXPECT_DOUBLE_EQ(c.watchdog_timeout, 300.0);
  EXPECT_TRUE(c.plugin_dirs.empty());
  EXPECT_NO_THROW(validate(c));
}

TEST(ConfigFields, TableDescribesEveryField) {
  const auto fields = config_fields();
  ASSERT_GE(fields.size(), 44u);
  const nlohmann::json json = to_json(ServerConfig{});
  EXPECT_EQ(json.size(), fields.size());
  for (const FieldInfo& f : fields) {
    EXPECT_TRUE(json.contains(std::string(f.name))) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
  EXPECT_EQ(canonical_key("model"), "model_path");
  EXPECT_EQ(canonical_key("model_impl"), "impl");
  EXPECT_EQ(canonical_key("model-impl"), "impl");
  EXPECT_EQ(canonical_key("nonsense"), "");
}

TEST(ConfigFields, ParsesEachType) {
  ServerConfig c;
  set_field(c, "port", " 8080 ", "test");
  set_field(c, "mem_fraction_static", "0.75", "test");
  set_field(c, "disable_radix_cache", "yes", "test");
  set_field(c, "schedule_policy", "lpm", "test");
  set_field(c, "model", "/models/x", "test");
  set_field(c, "model_impl", "transformers", "test");
  set_field(c, "chunked_prefill_size", "-1", "test");
  const std::vector<std::string> dirs{"/a", "/b"};
  set_field_list(c, "plugin_dirs", dirs, "test");
  EXPECT_EQ(c.port, 8080);
  EXPECT_DOUBLE_EQ(c.mem_fraction_static, 0.75);
  EXPECT_TRUE(c.disable_radix_cache);
  EXPECT_EQ(c.schedule_policy, "lpm");
  EXPECT_EQ(c.model_path, "/models/x");
  EXPECT_EQ(c.impl, "transformers");
  EXPECT_EQ(c.chunked_prefill_size, -1);
  EXPECT_EQ(c.plugin_dirs, dirs);
}

TEST(ConfigFields, UnknownKeyIsNamedWithSuggestion) {
  const std::string error = set_error("prot", "80");
  expect_contains(error, "unknown key 'prot'");
  expect_contains(error, "did you mean 'port'");
  expect_contains(set_error("completely_unrelated", "1"), "unknown key 'completely_unrelated'");
}

TEST(ConfigFields, WrongTypeIsNamed) {
  std::string error = set_error("port", "eighty");
  expect_contains(error, "'port'");
  expect_contains(error, "expected an integer");
  expect_contains(error, "'eighty'");
  expect_contains(set_error("port", "80.5"), "expected an integer");
  expect_contains(set_error("mem_fraction_static", "lots"), "expected a number");
  expect_contains(set_error("disable_radix_cache", "maybe"), "expected true or false");
  expect_contains(set_error("plugin_dirs", "/x"), "expected a list of strings");
}

TEST(ConfigFields, OutOfRangeIsNamed) {
  std::string error = set_error("port", "70000");
  expect_contains(error, "'port'");
  expect_contains(error, "from 1 to 65535");
  expect_contains(error, "out of range");
  expect_contains(set_error("mem_fraction_static", "1.5"), "from 0 to 1");
  expect_contains(set_error("tp_size", "0"), "'tp_size'");
  expect_contains(set_error("chunked_prefill_size", "-2"), "out of range");
  expect_contains(set_error("watchdog_timeout", "0"), "out of range");
}

TEST(ConfigFields, BadEnumValueIsNamed) {
  std::string error = set_error("schedule_policy", "fastest");
  expect_contains(error, "'schedule_policy'");
  expect_contains(error, "one of fcfs, lpm, random, lof");
  expect_contains(error, "'fastest'");
  expect_contains(set_error("device", "tpu"), "one of auto, cpu, cuda");
  expect_contains(set_error("impl", "vllm"), "one of auto, native, sglang, transformers");
  expect_contains(set_error("log_level", "loud"), "'log_level'");
  EXPECT_EQ(set_error("expert_distribution_recorder_mode", ""), "no error");
}

TEST(ConfigFields, PreferredSamplingParamsMustBeAJsonObject) {
  EXPECT_EQ(set_error("preferred_sampling_params", R"({"temperature": 0.5})"), "no error");
  expect_contains(set_error("preferred_sampling_params", "[1, 2]"), "a JSON object");
  expect_contains(set_error("preferred_sampling_params", "{oops"), "a JSON object");
}

TEST(ConfigFields, ValidateCatchesValuesSetInCode) {
  ServerConfig c;
  c.page_size = 0;
  try {
    validate(c);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    expect_contains(e.what(), "'page_size'");
  }
  c.page_size = 16;
  c.dtype = "int4";
  EXPECT_THROW(validate(c), ConfigError);
}

TEST(ConfigFields, JsonHasTypedValuesAndHidesTheApiKey) {
  ServerConfig c;
  c.api_key = "secret";
  c.plugin_dirs = {"/p"};
  const nlohmann::json json = to_json(c);
  EXPECT_EQ(json.at("port").get<int64_t>(), 30000);
  EXPECT_EQ(json.at("disable_radix_cache").get<bool>(), false);
  EXPECT_DOUBLE_EQ(json.at("schedule_conservativeness").get<double>(), 1.0);
  EXPECT_EQ(json.at("plugin_dirs").at(0).get<std::string>(), "/p");
  EXPECT_EQ(json.at("api_key").get<std::string>(), "***");
}

TEST(ConfigFields, MarkdownListsEveryFieldWithDefault) {
  const std::string md = fields_markdown();
  for (const FieldInfo& f : config_fields()) expect_contains(md, "`" + std::string(f.name) + "`");
  expect_contains(md, "| `port` | `--port` | integer | `30000` | 1 to 65535 |");
  expect_contains(md, "`--model-path, --model`");
}

}  // namespace
}  // namespace sable::config
