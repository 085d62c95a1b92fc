// What the user typed -> a local checkpoint (see resolve_model.h).
#include "core/model_source/resolve_model.h"

#include <fmt/format.h>

#include "core/model_source/hf_cache.h"
#include "core/model_source/hub_download.h"
#include "core/util/log.h"

namespace sable::model_source {

namespace fs = std::filesystem;

namespace {

bool is_gguf(const fs::path& p) { return p.extension() == ".gguf"; }

// The GGUF seam: a .gguf file, or a folder without config.json holding exactly one .gguf.
std::optional<fs::path> gguf_in(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (is_gguf(path)) return path;
    return std::nullopt;
  }
  if (!fs::is_directory(path, ec) || fs::exists(path / "config.json", ec)) return std::nullopt;
  std::optional<fs::path> found;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (!is_gguf(e.path()) || !e.is_regular_file(ec)) continue;
    if (found) {
      throw ResolveError(fmt::format("model_path {}: holds several .gguf files ({} and {}); name "
                                     "the one to load",
                                     path.string(), found->filename().string(),
                                     e.path().filename().string()));
    }
    found = e.path();
  }
  return found;
}

std::string list(const std::vector<std::string>& names) {
  return fmt::format("{}", fmt::join(names, ", "));
}

ModelSource from_hub(const std::string& repo_id, const ResolveOptions& o) {
  const fs::path repo_dir = repo_folder(o.hub.cache_dir, repo_id);
  if (!o.refresh) {
    if (const auto commit = cached_commit(repo_dir, o.revision)) {
      const fs::path snap = snapshot_dir(repo_dir, *commit);
      const auto missing = missing_required(snap, o.want);
      if (missing.empty()) {
        log::info("model: {} (revision {}) from the Hugging Face cache: {}", repo_id, o.revision,
                  snap.string());
        return {snap, SourceKind::kFolder, repo_id, *commit};
      }
      if (o.hub.offline) {
        throw ResolveError(fmt::format(
            "{} (revision {}): the cached snapshot {} lacks {}, and HF_HUB_OFFLINE=1 forbids "
            "downloading them",
            repo_id, o.revision, snap.string(), list(missing)));
      }
      log::info("model: {} (revision {}): the cache lacks {}; asking {}", repo_id, o.revision,
                list(missing), o.hub.endpoint);
    } else if (o.hub.offline) {
      throw ResolveError(fmt::format(
          "{} (revision {}) is not in the Hugging Face cache ({}), and HF_HUB_OFFLINE=1 forbids "
          "downloading it; unset HF_HUB_OFFLINE or run `sable download {}` where the Hub is "
          "reachable",
          repo_id, o.revision, o.hub.cache_dir.string(), repo_id));
    }
  } else if (o.hub.offline) {
    throw ResolveError(fmt::format("{}: HF_HUB_OFFLINE=1 forbids asking the Hub", repo_id));
  }
  const Snapshot snap = download_snapshot(repo_id, o.revision, o.want, o.hub);
  return {snap.dir, SourceKind::kFolder, repo_id, snap.commit};
}

}  // namespace

ModelSource resolve_model(const std::string& path_or_id, const ResolveOptions& options) {
  if (path_or_id.empty()) throw ResolveError("model_path is empty");
  const fs::path path(path_or_id);
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (const auto gguf = gguf_in(path)) return {*gguf, SourceKind::kGguf, "", ""};
    if (!fs::is_directory(path, ec)) {
      throw ResolveError(fmt::format("model_path {}: a file, but not a .gguf file; give a "
                                     "checkpoint folder, a .gguf file or a Hub id ORG/NAME",
                                     path_or_id));
    }
    return {path, SourceKind::kFolder, "", ""};
  }
  // Not on disk: a Hub id, unless it plainly is a path.
  const bool looks_like_path = path.is_absolute() || path_or_id.rfind("./", 0) == 0 ||
                               path_or_id.rfind("../", 0) == 0 || path_or_id[0] == '~';
  if (looks_like_path || !is_repo_id(path_or_id)) {
    throw ResolveError(fmt::format("model_path {}: no such file or folder (and not a Hugging Face "
                                   "Hub id of the form ORG/NAME)",
                                   path_or_id));
  }
  const std::string& rev = options.revision;
  if (rev.empty() || rev.front() == '/' || rev.find("..") != std::string::npos ||
      rev.find_first_of("\\ \t\n") != std::string::npos) {
    throw ResolveError(fmt::format("revision \"{}\": not a branch, tag or commit name", rev));
  }
  return from_hub(path_or_id, options);
}

}  // namespace sable::model_source
