// Hub settings from the environment (see hub_settings.h for the rules, taken from huggingface_hub).
#include "core/model_source/hub_settings.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

namespace sable::model_source {

namespace fs = std::filesystem;

namespace {

// "" for unset or empty variables: huggingface_hub's os.getenv(...) or default treats "" as set,
// but an empty cache path is never meant, so Sable falls back to the default there.
std::string get(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v ? std::string(v) : std::string();
}

// os.path.expanduser for a leading "~" or "~/".
fs::path expand_user(const std::string& path, const EnvLookup& env) {
  if (path == "~" || path.rfind("~/", 0) == 0) return fs::path(get(env, "HOME") + path.substr(1));
  return fs::path(path);
}

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
}

bool env_flag_true(const char* value) {
  if (!value) return false;
  std::string v(value);
  for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

HubSettings HubSettings::from_env(const EnvLookup& env) {
  HubSettings s;
  std::string home = get(env, "HF_HOME");
  if (home.empty()) {
    std::string xdg = get(env, "XDG_CACHE_HOME");
    home = (xdg.empty() ? get(env, "HOME") + "/.cache" : xdg) + "/huggingface";
  }
  s.hf_home = expand_user(home, env);
  std::string cache = get(env, "HF_HUB_CACHE");
  if (cache.empty()) cache = get(env, "HUGGINGFACE_HUB_CACHE");
  s.cache_dir = cache.empty() ? s.hf_home / "hub" : expand_user(cache, env);
  const std::string token_path = get(env, "HF_TOKEN_PATH");
  s.token_file = token_path.empty() ? s.hf_home / "token" : expand_user(token_path, env);

  s.endpoint = get(env, "HF_ENDPOINT");
  if (s.endpoint.empty()) s.endpoint = "https://huggingface.co";
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();

  s.token = trim(get(env, "HF_TOKEN"));
  if (s.token.empty()) s.token = trim(get(env, "HUGGING_FACE_HUB_TOKEN"));
  if (s.token.empty()) {
    std::ifstream in(s.token_file);
    std::string line;
    if (in && std::getline(in, line)) s.token = trim(line);
  }
  const char* offline = env("HF_HUB_OFFLINE");
  if (!offline || !*offline) offline = env("TRANSFORMERS_OFFLINE");
  s.offline = env_flag_true(offline);
  return s;
}

}  // namespace sable::model_source
