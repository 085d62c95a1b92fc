// The read-only routes: health and readiness (/health, /health_generate, /ready, /ping), model and
// server info (native_calls.h) under SGLang 0.5's names and their older aliases (/model_info =
// /get_model_info, /server_info = /get_server_info), the OpenAI model list, /metrics, and the root
// page.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/util/log.h"
#include "server/generate_api.h"
#include "server/http_error.h"
#include "server/native_calls.h"
#include "server/route_util.h"

namespace sable::server {

namespace {

using nlohmann::json;

// /health_generate: one tiny greedy request must finish (an embedding of [0] on an embedding
// model).
bool generation_works(ServerState& state) {
  if (!state.facts.is_generation) {
    try {
      EmbedItem item;
      item.rid = fmt::format("HEALTH_CHECK_{}", make_request_id());
      item.input_ids = {0};
      std::vector<EmbedItem> items;
      items.push_back(std::move(item));
      return state.backend.embed(std::move(items)).size() == 1;
    } catch (const std::exception& e) {
      log::warn("health check embedding failed: {}", e.what());
      return false;
    }
  }
  GenerateInput in;
  in.rid = fmt::format("HEALTH_CHECK_{}", make_request_id());
  in.input_ids = {0};
  in.params.max_new_tokens = 1;
  in.params.temperature = 0.0;
  auto gen = state.backend.submit(std::move(in));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto d = gen->next(std::chrono::milliseconds(200));
    if (d && d->finish) return d->finish->type != Finish::Type::kAbort;
    if (gen->done()) return false;
  }
  return false;
}

json model_card(const ServerState& state) {
  const std::string name = state.served_name();
  return {{"id", name},          {"object", "model"},     {"created", state.started_unix},
          {"owned_by", "sable"}, {"root", name},          {"parent", nullptr},
          {"max_model_len", state.facts.context_length}};
}

// A LoRA adapter as a model of its own: its root is where it came from, its parent the base.
json adapter_card(const ServerState& state, const LoraAdapterInfo& a) {
  return {{"id", a.name},        {"object", "model"},  {"created", state.started_unix},
          {"owned_by", "sable"}, {"root", a.path},     {"parent", state.served_name()},
          {"max_model_len", state.facts.context_length}};
}

}  // namespace

void register_info_routes(httplib::Server& svr, ServerState& state) {
  // /health answers from the flags (SGLang's default); /health_generate runs one token.
  svr.Get("/health", guarded(state, [&state](const auto&, auto& res) {
    res.status = state.ready && !state.draining ? 200 : 503;
  }));
  svr.Get("/health_generate", guarded(state, [&state](const auto&, auto& res) {
    res.status = state.ready && !state.draining && generation_works(state) ? 200 : 503;
  }));
  // /ready: warm-up done and not draining; /ping: SageMaker's health check, the same flags.
  auto ready = guarded(state, [&state](const auto&, auto& res) {
    res.status = state.ready && !state.draining ? 200 : 503;
  });
  svr.Get("/ready", ready);
  svr.Get("/ping", ready);
  svr.Get("/", guarded(state, [](const auto&, auto& res) { send_json(res, "Sable is running"); }));

  auto model = guarded(state, [&state](const auto&, auto& res) { send_json(res, model_info(state)); });
  svr.Get("/model_info", model);
  svr.Get("/get_model_info", model);
  auto server = guarded(state, [&state](const auto&, auto& res) {
    send_json(res, server_info(state));
  });
  svr.Get("/server_info", server);
  svr.Get("/get_server_info", server);

  svr.Get("/v1/models", guarded(state, [&state](const auto&, auto& res) {
    json data = json::array({model_card(state)});
    for (const auto& a : state.backend.lora_adapters()) data.push_back(adapter_card(state, a));
    send_json(res, {{"object", "list"}, {"data", data}});
  }));
  svr.Get(R"(/v1/models/(.+))", guarded(state, [&state](const auto& req, auto& res) {
    const std::string id = req.matches[1];
    for (const auto& a : state.backend.lora_adapters())
      if (a.name == id) return send_json(res, adapter_card(state, a));
    state.require_model(id);
    send_json(res, model_card(state));
  }));

  svr.Get("/metrics", guarded(state, [&state](const auto&, auto& res) {
    if (!state.config.enable_metrics) {
      throw HttpError::not_found("metrics are off: start the server with --enable-metrics");
    }
    res.set_content(state.metrics.render(state.backend.stats(), state.facts),
                    "text/plain; version=0.0.4; charset=utf-8");
  }));
}

}  // namespace sable::server
