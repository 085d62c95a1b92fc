// Downloads a checkpoint from the Hugging Face Hub into the cache layout of hf_cache.h, the way
// huggingface_hub's snapshot_download does: the revision's file list from
// /api/models/ORG/NAME/revision/REV, then for each wanted file a HEAD of /ORG/NAME/resolve/COMMIT/FILE
// (redirects not followed: X-Repo-Commit, X-Linked-Etag / ETag, X-Linked-Size, Location), and a GET
// of its Location into blobs/<etag>.incomplete, resumed with a Range request when a partial one
// exists, checked (size; sha256 when the etag is one) and renamed into place, then linked from
// snapshots/<commit>/. Several files download at once. refs/<revision> is written last, so an
// interrupted download never leaves a revision pointing at an incomplete snapshot.
#pragma once

#include <filesystem>
#include <string>

#include "core/model_source/checkpoint_files.h"
#include "core/model_source/hub_settings.h"

namespace sable::model_source {

struct Snapshot {
  std::filesystem::path dir;  // <cache>/models--ORG--NAME/snapshots/<commit>
  std::string commit;
};

// Fetches what the snapshot of `revision` lacks for `want`. Throws ResolveError naming the repo, the
// file and the cause (401/403, 404, network, disk full, checksum mismatch).
Snapshot download_snapshot(const std::string& repo_id, const std::string& revision, Want want,
                           const HubSettings& hub);

}  // namespace sable::model_source
