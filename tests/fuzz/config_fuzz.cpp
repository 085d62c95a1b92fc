// libFuzzer target for the YAML configuration reader (core/config/yaml_source.cpp): a config file
// is outside input (`sable serve --config`), so any bytes must either apply or stop with one
// ConfigError naming the problem, never crash, hang or throw anything else. A file that applies
// must leave a configuration that passes validate() and serializes (/server_info shows it).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/config/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sable::config::ServerConfig config;
  try {
    sable::config::apply_yaml(config, text, "fuzz.yaml");
  } catch (const sable::config::ConfigError&) {
    return 0;  // refused with a message: fine
  }
  try {
    sable::config::validate(config);
  } catch (const sable::config::ConfigError&) {
    std::abort();  // applied field by field, yet invalid as a whole
  }
  (void)sable::config::to_json(config).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
