// Reading a serve.yaml: a mapping of snake_case keys to values, each stored through set_field so
// that YAML and flags share one parser and one set of checks.
#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "core/config/server_config.h"

namespace sable::config {
namespace {

std::string_view node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "a scalar";
  }
}

}  // namespace

void apply_yaml(ServerConfig& config, std::string_view yaml_text, std::string_view origin) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: line {}: not valid YAML: {}", origin, e.mark.line + 1, e.msg));
  }
  if (root.IsNull()) return;  // an empty file sets nothing
  if (!root.IsMap()) {
    throw ConfigError(fmt::format("{}: expected a mapping of option names to values at the top, "
                                  "got {}", origin, node_kind(root)));
  }
  for (const auto& entry : root) {
    if (!entry.first.IsScalar()) {
      throw ConfigError(fmt::format("{}: line {}: option names must be plain strings", origin,
                                    entry.first.Mark().line + 1));
    }
    const std::string key = entry.first.Scalar();
    const YAML::Node& value = entry.second;
    const std::string where = fmt::format("{}: line {}", origin, entry.first.Mark().line + 1);
    const std::string_view name = canonical_key(key);
    if (name.empty()) {
      set_field(config, key, "", where);  // throws the unknown-key error with a suggestion
    }
    const bool is_list = [&] {
      for (const FieldInfo& info : config_fields()) {
        if (info.name == name) return info.is_list;
      }
      return false;
    }();
    if (is_list) {
      if (!value.IsSequence()) {
        throw ConfigError(fmt::format("{}: '{}': expected a list of strings, got {}", where, key,
                                      node_kind(value)));
      }
      std::vector<std::string> items;
      for (const auto& item : value) {
        if (!item.IsScalar()) {
          throw ConfigError(fmt::format("{}: '{}': expected a list of strings, got an item that "
                                        "is {}", where, key, node_kind(item)));
        }
        items.push_back(item.Scalar());
      }
      set_field_list(config, key, items, where);
    } else {
      if (!value.IsScalar()) {
        const FieldInfo* info = nullptr;
        for (const FieldInfo& f : config_fields()) {
          if (f.name == name) info = &f;
        }
        const std::string_view type = info != nullptr ? info->type : "value";
        const bool vowel = type == "integer";
        throw ConfigError(fmt::format("{}: '{}': expected {} {}, got {}", where, key,
                                      vowel ? "an" : "a", type, node_kind(value)));
      }
      set_field(config, key, value.Scalar(), where);
    }
  }
}

void apply_yaml_file(ServerConfig& config, const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(fmt::format("cannot read config file {}", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  apply_yaml(config, text.str(), file.string());
  config.config_file = file.string();
}

}  // namespace sable::config
