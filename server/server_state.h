// What every route handler shares: the configuration, the backend, the metrics, the chat template,
// and the server's life-cycle flags (ready, draining, requests in flight). Internal to server/.
//
// Thread-safety: the members are either immutable after construction or atomic; the backend and
// the metrics are thread-safe themselves.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/config/server_config.h"
#include "server/backend.h"
#include "server/metrics.h"
#include "server/openai_api.h"
#include "server/request_limits.h"

namespace sable::server {

struct ServerState {
  ServerState(const config::ServerConfig& config, Backend& backend);
  ~ServerState();

  const config::ServerConfig config;
  Backend& backend;
  const tokenizer::Tokenizer& tokenizer;
  const ModelFacts facts;
  const RequestLimits limits;
  Metrics metrics;
  ChatRenderer chat;
  std::unique_ptr<nlohmann::json> preferred;  // preferred_sampling_params (object or null)
  const int64_t started_unix;

  std::atomic<bool> ready{false};     // warm-up done
  std::atomic<bool> draining{false};  // shutting down: no new generation requests
  std::atomic<int64_t> in_flight{0};  // generation requests being answered

  // Counts one generation request for as long as it lives.
  class InFlight {
   public:
    explicit InFlight(ServerState& s) : s_(s) { s_.in_flight.fetch_add(1); }
    ~InFlight() { s_.in_flight.fetch_sub(1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    ServerState& s_;
  };

  // 503 while draining (the warm-up runs before ready, so starting is no reason), or when the queue is over max_queued_requests.
  void check_admission() const;
  // The model's name in responses: served_model_name, else the model path.
  std::string served_name() const;
  // Accepts the model names a client may send ("default", the served name, the model path).
  bool known_model(const std::string& name) const;
  // Throws a 404 model_not_found naming `model` (and what this server serves) when the name is not
  // known, as OpenAI answers it (the openai client raises NotFoundError).
  void require_model(const std::string& name) const;
  // The LoRA adapter an OpenAI `model` names: "" for the base model (any name require_model
  // accepts), NAME for "BASE:NAME" or an adapter's own name. An unknown model is a 404
  // (model_not_found); "BASE:NAME" with an adapter that is not loaded is a 400 naming model.
  std::string lora_of_model(const std::string& name) const;
  // With skip_tokenizer_init: a 400 naming `field`, which needs text (the server has no tokenizer).
  void require_tokenizer(const char* field) const;
  // Tokenizes a prompt and enforces the context length (400 context_length_exceeded, or truncation
  // when allowed).
  std::vector<int32_t> prompt_ids(const std::string& text, bool add_special_tokens,
                                  const char* field) const;
  void check_prompt_length(std::vector<int32_t>& ids, const char* field) const;
};

}  // namespace sable::server
