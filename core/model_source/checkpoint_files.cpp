// The file sets of a checkpoint (see checkpoint_files.h).
#include "core/model_source/checkpoint_files.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

namespace sable::model_source {

namespace fs = std::filesystem;

namespace {

constexpr const char* kIndex = "model.safetensors.index.json";
constexpr const char* kSingle = "model.safetensors";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The shards an index's weight_map names, sorted and unique.
std::vector<std::string> index_shards(const std::string& index_json) {
  const auto j = nlohmann::json::parse(index_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
      !j["weight_map"].is_object()) {
    throw std::runtime_error(std::string(kIndex) + " has no \"weight_map\" object");
  }
  std::set<std::string> shards;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string()) {
      throw std::runtime_error(std::string(kIndex) + ": weight_map[\"" + tensor +
                               "\"] is not a file name");
    }
    const std::string name = file.get<std::string>();
    if (name.empty() || name.find("..") != std::string::npos || name.front() == '/') {
      throw std::runtime_error(std::string(kIndex) + ": bad shard name \"" + name + "\"");
    }
    shards.insert(name);
  }
  return {shards.begin(), shards.end()};
}

// exists() follows the snapshot's symlink: a dangling link (blob removed) counts as missing.
bool present(const fs::path& folder, const std::string& name) {
  std::error_code ec;
  return fs::is_regular_file(folder / name, ec);
}

}  // namespace

const std::vector<std::string>& metadata_files() {
  static const std::vector<std::string> kFiles = {
      "config.json",          "generation_config.json", "tokenizer.json",
      "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
      "vocab.json",           "merges.txt",             "tokenizer.model",
      "chat_template.jinja",  "chat_template.json",     kIndex};
  return kFiles;
}

std::vector<std::string> wanted_metadata(const std::vector<std::string>& repo_files) {
  std::vector<std::string> out;
  for (const auto& f : metadata_files()) {
    if (std::find(repo_files.begin(), repo_files.end(), f) != repo_files.end()) out.push_back(f);
  }
  return out;
}

std::vector<std::string> wanted_weights(const std::vector<std::string>& repo_files,
                                        const std::string& index_json) {
  const auto listed = [&](const std::string& f) {
    return std::find(repo_files.begin(), repo_files.end(), f) != repo_files.end();
  };
  if (!index_json.empty()) {
    auto shards = index_shards(index_json);
    for (const auto& s : shards) {
      if (!listed(s)) throw std::runtime_error(std::string(kIndex) + " names " + s +
                                               ", which the repo does not have");
    }
    return shards;
  }
  if (listed(kSingle)) return {kSingle};
  std::vector<std::string> out;
  for (const auto& f : repo_files) {
    if (f.find('/') == std::string::npos && ends_with(f, ".safetensors")) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_index(const fs::path& folder) {
  std::ifstream in(folder / kIndex, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::vector<std::string>& lora_adapter_files() {
  static const std::vector<std::string> files = {"adapter_config.json",
                                                 "adapter_model.safetensors"};
  return files;
}

std::vector<std::string> missing_required(const fs::path& folder, Want want) {
  std::vector<std::string> missing;
  if (want == Want::kLoraAdapter) {
    for (const auto& f : lora_adapter_files())
      if (!present(folder, f)) missing.push_back(f);
    return missing;
  }
  if (!present(folder, "tokenizer.json")) missing.push_back("tokenizer.json");
  if (want == Want::kTokenizer) return missing;
  if (!present(folder, "config.json")) missing.push_back("config.json");
  if (present(folder, kIndex)) {
    try {
      for (const auto& shard : index_shards(read_index(folder))) {
        if (!present(folder, shard)) missing.push_back(shard);
      }
    } catch (const std::runtime_error&) {
      missing.push_back(kIndex);  // unreadable: fetch it again
    }
  } else if (!present(folder, kSingle)) {
    bool any = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      any = any || (e.path().extension() == ".safetensors" && e.is_regular_file(ec));
    }
    if (!any) missing.push_back(kSingle);
  }
  return missing;
}

}  // namespace sable::model_source
