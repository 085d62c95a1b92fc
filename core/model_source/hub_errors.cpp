// Hub error messages (see hub_errors.h).
#include "core/model_source/hub_errors.h"

#include <fmt/format.h>

#include "core/model_source/resolve_model.h"

namespace sable::model_source {

namespace {

std::string what_of(const HubTarget& t) {
  return t.file.empty() ? fmt::format("{} (revision {})", t.repo_id, t.revision)
                        : fmt::format("{} (revision {}), file {}", t.repo_id, t.revision, t.file);
}

}  // namespace

void check_http_status(const HubTarget& t, const HttpReply& r, const HubSettings& hub) {
  if (r.status < 400) return;
  const std::string code = r.header("x-error-code");
  const std::string server_says = r.header("x-error-message");
  const std::string detail = server_says.empty() ? "" : fmt::format(" (the Hub says: {})", server_says);
  const std::string token_hint =
      hub.token.empty()
          ? "set HF_TOKEN (or run `huggingface-cli login`) to a token that can read it"
          : "the token Sable sent (HF_TOKEN or " + hub.token_file.string() +
                ") was refused or lacks access";
  std::string cause;
  if (r.status == 401) {
    cause = fmt::format("401 Unauthorized{}: the repo is private or gated, or does not exist; {}",
                        detail, token_hint);
  } else if (r.status == 403) {
    cause = fmt::format("403 Forbidden{}: the repo is gated; accept its conditions at {}/{} and {}",
                        detail, hub.endpoint, t.repo_id, token_hint);
  } else if (r.status == 404) {
    if (code == "RepoNotFound") {
      cause = "404: no such repo on " + hub.endpoint + " (or it is private: set HF_TOKEN)";
    } else if (code == "RevisionNotFound") {
      cause = fmt::format("404: the repo has no revision {}", t.revision);
    } else if (code == "EntryNotFound" || !t.file.empty()) {
      cause = fmt::format("404: no file {} at this revision", t.file);
    } else {
      cause = "404 Not Found";
    }
    cause += detail;
  } else {
    cause = fmt::format("HTTP {}{}", r.status, detail);
  }
  throw ResolveError(fmt::format("{}: {}", what_of(t), cause));
}

void throw_network_error(const HubTarget& t, const NetworkError& e, const HubSettings& hub) {
  throw ResolveError(fmt::format(
      "{}: cannot reach {}: {}. Check the network or proxy settings; with HF_HUB_OFFLINE=1 Sable "
      "uses only what the cache ({}) already holds",
      what_of(t), hub.endpoint, e.what(), hub.cache_dir.string()));
}

}  // namespace sable::model_source
