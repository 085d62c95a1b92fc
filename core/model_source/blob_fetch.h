// One file of a Hub repo into the cache: its metadata from a HEAD of /ORG/NAME/resolve/COMMIT/FILE,
// then, unless blobs/<etag> already exists (shared by every snapshot that has the same content),
// a download into blobs/<etag>.incomplete under an flock of .locks/.../<etag>.lock (the lock
// huggingface_hub takes too, so the two never write one blob at once), resumed with a Range request
// from whatever a previous attempt left, retried on a dropped connection, checked (size, and sha256
// when the etag is one, as for LFS files) and renamed into place; last the snapshot's link.
// A blob that fails its check is deleted. Runs on a download worker thread.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>

#include "core/model_source/hub_http.h"
#include "core/model_source/hub_settings.h"
#include "core/model_source/progress.h"

namespace sable::model_source {

struct FetchContext {
  const std::string& repo_id;
  const std::string& revision;  // what the user asked for (for messages)
  const std::string& commit;    // the snapshot being filled
  const std::filesystem::path& repo_dir;
  const HubSettings& hub;
  ProgressBoard& progress;
  const std::atomic<bool>& cancel;  // set when another file failed: stop early
};

// Throws ResolveError naming the repo, the file and the cause.
void fetch_file(HubHttp& http, const FetchContext& ctx, const std::string& filename);

// The sha256 of a file as 64 lowercase hex digits (OpenSSL).
std::string sha256_of_file(const std::filesystem::path& path);

}  // namespace sable::model_source
