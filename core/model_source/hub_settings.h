// Where the Hugging Face cache is and how to reach the Hub, read from the environment exactly as
// huggingface_hub reads it (constants.py), so Sable and transformers/SGLang share one cache:
//   cache     HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub; HF_HOME defaults to
//             XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
//   endpoint  HF_ENDPOINT (default https://huggingface.co), trailing '/' dropped
//   token     HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file `huggingface-cli login` writes
//             (HF_TOKEN_PATH, else HF_HOME/token), first line, trimmed
//   offline   HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) in 1|ON|YES|TRUE, any case
// Proxies (http_proxy, https_proxy, no_proxy, ...) are read by libcurl itself.
// Pure: the environment comes through an EnvLookup so tests can give their own.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace sable::model_source {

// Returns the variable's value, or nullptr when unset.
using EnvLookup = std::function<const char*(const char* name)>;
EnvLookup process_env();

struct HubSettings {
  std::filesystem::path hf_home;     // HF_HOME
  std::filesystem::path cache_dir;   // the hub cache: models--ORG--NAME folders live here
  std::filesystem::path token_file;  // where `huggingface-cli login` keeps the token
  std::string endpoint;              // e.g. https://huggingface.co
  std::string token;                 // empty: anonymous
  bool offline = false;              // no request at all; the cache or an error

  static HubSettings from_env(const EnvLookup& env = process_env());
};

// huggingface_hub's _is_true: "1", "ON", "YES", "TRUE" in any case.
bool env_flag_true(const char* value);

}  // namespace sable::model_source
