// Which files of a Hub repo make a Sable checkpoint, and whether a local folder already has them.
//
// A model needs: config.json, the weights (model.safetensors, or model.safetensors.index.json and
// every shard its weight_map names, or else every top-level *.safetensors), the tokenizer
// (tokenizer.json) and, when the repo has them, generation_config.json, tokenizer_config.json,
// special_tokens_map.json, the chat template files and the other tokenizer side files. A tokenizer
// alone (--tokenizer-path ORG/NAME) needs the same minus the weights. A LoRA adapter
// (--lora-paths NAME=ORG/NAME) needs adapter_config.json and adapter_model.safetensors only.
// Pure functions.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace sable::model_source {

enum class Want { kModel, kTokenizer, kLoraAdapter };

// The files of a PEFT LoRA adapter, all required.
const std::vector<std::string>& lora_adapter_files();

// Small files fetched when the repo lists them (config, tokenizer, chat template).
const std::vector<std::string>& metadata_files();

// Of a repo's file list, the metadata files to fetch, in a stable order.
std::vector<std::string> wanted_metadata(const std::vector<std::string>& repo_files);

// The weight files of a repo: `index_json` is the text of model.safetensors.index.json when the
// repo has one (then its weight_map's shards, each once, sorted), else model.safetensors, else every
// top-level *.safetensors. Throws std::runtime_error when the index is malformed or names a shard
// the repo does not list.
std::vector<std::string> wanted_weights(const std::vector<std::string>& repo_files,
                                        const std::string& index_json);

// The text of <folder>/model.safetensors.index.json, "" when there is none.
std::string read_index(const std::filesystem::path& folder);

// What a folder still lacks to be used as `want` without asking the Hub: empty when complete.
// Missing optional metadata (generation_config.json, ...) does not count.
std::vector<std::string> missing_required(const std::filesystem::path& folder, Want want);

}  // namespace sable::model_source
