// Messages for what goes wrong talking to the Hub, each naming the repo, the file (when there is
// one) and the cause with what to do about it: 401/403 (private or gated: HF_TOKEN), 404 (no such
// repo, revision or file, from the Hub's X-Error-Code), other statuses, and network failures
// (HF_HUB_OFFLINE=1 uses the cache). All throw ResolveError.
#pragma once

#include <string>

#include "core/model_source/hub_http.h"
#include "core/model_source/hub_settings.h"

namespace sable::model_source {

// Where a request was about: `file` empty for the repo's listing.
struct HubTarget {
  const std::string& repo_id;
  const std::string& revision;
  const std::string& file;
};

// Throws for a status >= 400 (after redirects); returns otherwise.
void check_http_status(const HubTarget& target, const HttpReply& reply, const HubSettings& hub);

[[noreturn]] void throw_network_error(const HubTarget& target, const NetworkError& error,
                                      const HubSettings& hub);

}  // namespace sable::model_source
