// Hub downloads (see hub_download.h).
#include "core/model_source/hub_download.h"

#include <fmt/format.h>

#include "core/model_source/resolve_model.h"

namespace sable::model_source {

Snapshot download_snapshot(const std::string& repo_id, const std::string& revision, Want,
                           const HubSettings& hub) {
  throw ResolveError(fmt::format("{} (revision {}) is not complete in the Hugging Face cache ({}) "
                                 "and this build cannot download yet",
                                 repo_id, revision, hub.cache_dir.string()));
}

}  // namespace sable::model_source
