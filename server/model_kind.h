// Which kind of model a route needs. A generation server answers /generate and the OpenAI text
// routes; an embedding server (--is-embedding with a causal LM or an encoder) answers /encode and
// /v1/embeddings; a score server (a *ForSequenceClassification checkpoint: reward model,
// cross-encoder) answers /classify and /v1/rerank (and /encode, as SGLang does). A request to a
// route the served model cannot answer is a 400 naming the route and the model's kind.
#pragma once

#include <initializer_list>
#include <string>

#include "server/server_state.h"

namespace sable::server {

inline constexpr const char* kGenerationKind = "generation";
inline constexpr const char* kEmbeddingKind = "embedding";
inline constexpr const char* kScoreKind = "score";

// Throws HttpError 400 (param "model") unless facts.model_kind is one of `kinds`.
void require_model_kind(const ServerState& state, const char* route,
                        std::initializer_list<const char*> kinds);

}  // namespace sable::server
