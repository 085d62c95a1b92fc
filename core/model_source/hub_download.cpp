// Hub downloads into the cache layout (see hub_download.h).
#include "core/model_source/hub_download.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/model_source/blob_fetch.h"
#include "core/model_source/hf_cache.h"
#include "core/model_source/hub_errors.h"
#include "core/model_source/hub_http.h"
#include "core/model_source/progress.h"
#include "core/model_source/resolve_model.h"
#include "core/util/log.h"

namespace sable::model_source {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxWorkers = 8;  // huggingface_hub's snapshot_download default

struct Listing {
  std::string commit;
  std::vector<std::string> files;
};

// GET /api/models/ORG/NAME/revision/REV: the revision's commit and its files.
Listing list_revision(HubHttp& http, const std::string& repo_id, const std::string& revision,
                     const HubSettings& hub) {
  static const std::string kNoFile;
  const HubTarget target{repo_id, revision, kNoFile};
  const std::string url = fmt::format("{}/api/models/{}/revision/{}", hub.endpoint, repo_id,
                                      url_quote(revision, ""));
  HttpReply r;
  try {
    r = http.get(url);
  } catch (const NetworkError& e) {
    throw_network_error(target, e, hub);
  }
  check_http_status(target, r, hub);
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  Listing out;
  if (j.is_object() && j.contains("sha") && j["sha"].is_string()) out.commit = j["sha"];
  if (!is_commit_hash(out.commit) || !j.contains("siblings") || !j["siblings"].is_array()) {
    throw ResolveError(fmt::format("{} (revision {}): {} answered without a commit \"sha\" and a "
                                   "\"siblings\" file list",
                                   repo_id, revision, url));
  }
  for (const auto& s : j["siblings"]) {
    if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string()) {
      out.files.push_back(s["rfilename"]);
    }
  }
  return out;
}

// Fetches `files` with up to kMaxWorkers transfers at once; the first failure stops the others
// (their partial blobs stay for a resume) and is rethrown.
void fetch_all(const std::vector<std::string>& files, const FetchContext& proto,
               std::atomic<bool>& cancel) {
  if (files.empty()) return;
  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr first_error;
  const auto worker = [&] {
    try {
      HubHttp http(proto.hub);
      for (size_t i = next++; i < files.size() && !cancel.load(); i = next++) {
        fetch_file(http, proto, files[i]);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!first_error && !cancel.load()) first_error = std::current_exception();
      cancel = true;
    }
  };
  std::vector<std::thread> pool;
  for (size_t w = 0; w < std::min(kMaxWorkers, files.size()); ++w) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

std::vector<std::string> not_in(const fs::path& snap, const std::vector<std::string>& files) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& f : files) {
    if (!fs::is_regular_file(snap / f, ec)) out.push_back(f);
  }
  return out;
}

}  // namespace

Snapshot download_snapshot(const std::string& repo_id, const std::string& revision, Want want,
                           const HubSettings& hub) {
  if (hub.offline) {
    throw ResolveError(fmt::format("{} (revision {}): HF_HUB_OFFLINE=1 forbids downloading",
                                   repo_id, revision));
  }
  Listing listing;
  {
    HubHttp http(hub);
    listing = list_revision(http, repo_id, revision, hub);
  }
  const fs::path repo_dir = repo_folder(hub.cache_dir, repo_id);
  const fs::path snap = snapshot_dir(repo_dir, listing.commit);
  log::info("model: {} revision {} is commit {}; filling {}", repo_id, revision, listing.commit,
            snap.string());
  ProgressBoard progress(ProgressBoard::stderr_is_tty());
  std::atomic<bool> cancel{false};
  const FetchContext context{repo_id, revision, listing.commit, repo_dir, hub, progress, cancel};

  std::vector<std::string> metadata = wanted_metadata(listing.files);
  if (want == Want::kLoraAdapter) {  // the adapter's own two files, nothing of a model
    metadata.clear();
    for (const auto& f : lora_adapter_files())
      if (std::find(listing.files.begin(), listing.files.end(), f) != listing.files.end())
        metadata.push_back(f);
  }
  if (want == Want::kTokenizer) {
    std::erase(metadata, std::string("model.safetensors.index.json"));
  }
  fetch_all(not_in(snap, metadata), context, cancel);
  if (want == Want::kModel) {
    std::vector<std::string> weights;
    try {
      weights = wanted_weights(listing.files, read_index(snap));
    } catch (const std::runtime_error& e) {
      throw ResolveError(fmt::format("{} (revision {}): {}", repo_id, revision, e.what()));
    }
    if (weights.empty()) {
      throw ResolveError(fmt::format(
          "{} (revision {}): the repo has no *.safetensors weights (Sable reads safetensors "
          "checkpoints and .gguf files; files there: {})",
          repo_id, revision, fmt::join(listing.files, ", ")));
    }
    fetch_all(not_in(snap, weights), context, cancel);
  }
  const auto missing = missing_required(snap, want);
  if (!missing.empty()) {
    if (want == Want::kLoraAdapter)
      throw ResolveError(fmt::format("{} (revision {}): the repo has no {}, so it is not a PEFT "
                                     "LoRA adapter",
                                     repo_id, revision, fmt::join(missing, ", ")));
    throw ResolveError(fmt::format("{} (revision {}): the repo has no {} (Sable needs it; a "
                                   "tokenizer from elsewhere can come with --tokenizer-path)",
                                   repo_id, revision, fmt::join(missing, ", ")));
  }
  write_ref(repo_dir, revision, listing.commit);  // last: the revision now names a whole snapshot
  return {snap, listing.commit};
}

}  // namespace sable::model_source
