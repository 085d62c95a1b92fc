// Every `chat` row of tests/golden/tokenizers/<name>/vectors.json must render exactly `rendered`
// with that tokenizer's chat_template, given bos/eos tokens as transformers passes them.
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/chat_template/chat_template.h"

namespace {

using nlohmann::ordered_json;

ordered_json load(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ordered_json::parse(ss.str());
}

// transformers passes special tokens as strings; an AddedToken dict gives its "content".
ordered_json token_of(const ordered_json& cfg, const char* key) {
  if (!cfg.contains(key) || cfg[key].is_null()) return nullptr;
  if (cfg[key].is_object()) return cfg[key]["content"];
  return cfg[key];
}

int check_folder(const std::string& name) {
  std::string dir = std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/" + name;
  ordered_json cfg = load(dir + "/tokenizer_config.json");
  ordered_json vectors = load(dir + "/vectors.json");
  if (!vectors.contains("chat") || vectors["chat"].empty()) return 0;
  EXPECT_TRUE(cfg["chat_template"].is_string()) << name;
  auto tpl = sable::chat::ChatTemplate::compile(cfg["chat_template"].get<std::string>());
  int rows = 0;
  for (const auto& row : vectors["chat"]) {
    ordered_json ctx;
    ctx["messages"] = row["messages"];
    if (row.contains("tools")) ctx["tools"] = row["tools"];
    ctx["add_generation_prompt"] = row["add_generation_prompt"];
    ctx["bos_token"] = token_of(cfg, "bos_token");
    ctx["eos_token"] = token_of(cfg, "eos_token");
    EXPECT_EQ(tpl->render(ctx), row["rendered"].get<std::string>())
        << name << " row " << rows << ": " << row["messages"].dump();
    ++rows;
  }
  return rows;
}

TEST(ChatTemplateGolden, Qwen3RendersEveryChatRow) { EXPECT_EQ(check_folder("qwen3"), 9); }

TEST(ChatTemplateGolden, Llama3RendersEveryChatRow) { EXPECT_EQ(check_folder("llama3"), 8); }

TEST(ChatTemplateGolden, Llama2HasNoChatRows) { EXPECT_EQ(check_folder("llama2"), 0); }

TEST(ChatTemplateGolden, Qwen3ToolsRowKeepsKeyOrderOnlyWithOrderedJson) {
  std::string dir = std::string(SABLE_TEST_DATA_DIR) + "/tokenizers/qwen3";
  ordered_json cfg = load(dir + "/tokenizer_config.json");
  auto tpl = sable::chat::ChatTemplate::compile(cfg["chat_template"].get<std::string>());
  ordered_json tools = ordered_json::parse(
      R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])");
  ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"tools", tools}};
  std::string ordered = tpl->render(ctx);
  EXPECT_NE(ordered.find(R"({"type": "function", "function": {"name": "f")"), std::string::npos);
  // nlohmann::json sorts keys, so the same tools print alphabetically.
  std::string sorted = tpl->render(nlohmann::json::parse(ctx.dump()));
  EXPECT_NE(sorted.find(R"({"function": {"name": "f", "parameters")"), std::string::npos);
}

}  // namespace
