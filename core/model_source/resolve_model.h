// The one door models come through (DESIGN.md, "Where models come from"): what the user typed as
// --model-path / --tokenizer-path becomes a local path before any plugin or tokenizer sees it.
//
//   a local folder            used as it is (config.json + *.safetensors + tokenizer files)
//   a local *.gguf file, or   returned as it is, kind kGguf: the GGUF loader reads it
//   a folder whose only model file is one *.gguf (and no config.json)
//   ORG/NAME (a Hub id)       the snapshot folder of `revision` in the Hugging Face cache
//                             (hf_cache.h). When the cache already holds config, weights and
//                             tokenizer of that revision it is used with no request at all;
//                             otherwise the missing files are downloaded into the same layout
//                             (hub_download.h), unless HF_HUB_OFFLINE=1.
//
// Errors throw ResolveError with a message naming the path or repo, the file and the cause.
// Thread-safe (no shared state); downloads run on their own threads.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "core/model_source/checkpoint_files.h"
#include "core/model_source/hub_settings.h"

namespace sable::model_source {

enum class SourceKind {
  kFolder,  // a checkpoint folder: a local one, or a Hub snapshot in the cache
  kGguf,    // one .gguf file (path is the file)
};

struct ModelSource {
  std::filesystem::path path;  // the folder, or the .gguf file
  SourceKind kind = SourceKind::kFolder;
  std::string repo_id;  // the Hub id when it came from the Hub, else ""
  std::string commit;   // the snapshot's commit when it came from the Hub, else ""
};

struct ResolveOptions {
  std::string revision = "main";  // branch, tag or commit of a Hub id; ignored for local paths
  Want want = Want::kModel;       // kTokenizer: only the tokenizer and config files
  // Ask the Hub for the revision's current commit even when the cache has a complete snapshot
  // (`sable download`); otherwise a complete cached snapshot is used with no request.
  bool refresh = false;
  HubSettings hub = HubSettings::from_env();
};

class ResolveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

ModelSource resolve_model(const std::string& path_or_id, const ResolveOptions& options = {});

}  // namespace sable::model_source
