// Route / model-kind checks (see model_kind.h).
#include "server/model_kind.h"

#include <fmt/format.h>

#include "server/http_error.h"

namespace sable::server {

void require_model_kind(const ServerState& state, const char* route,
                        std::initializer_list<const char*> kinds) {
  std::string wanted;
  for (const char* k : kinds) {
    if (state.facts.model_kind == k) return;
    wanted += wanted.empty() ? k : std::string(" or ") + k;
  }
  const std::string hint =
      state.facts.model_kind == kGenerationKind
          ? "launch with --is-embedding for embedding, reward or reranker models"
      : state.facts.model_kind == kScoreKind
          ? "this server answers /classify, /encode and /v1/rerank"
          : "this server answers /encode and /v1/embeddings";
  throw HttpError::bad_request(
      fmt::format("{} needs a {} model, but this server serves {} {} model ({}); {}", route,
                  wanted, state.facts.model_kind == kEmbeddingKind ? "an" : "a",
                  state.facts.model_kind,
                  state.facts.architecture.empty() ? state.facts.model_path
                                                   : state.facts.architecture,
                  hint),
      "model");
}

}  // namespace sable::server
