// Helpers shared by the route files (internal to server/; includes httplib, so keep it out of
// public headers): the error-mapping wrapper every handler runs in, JSON body parsing, JSON and
// SSE writing.
#pragma once

#include <httplib.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "server/server_state.h"

namespace sable::server {

using RouteFn = std::function<void(const httplib::Request&, httplib::Response&)>;

// Runs `fn`, mapping HttpError to its status, sampling::ValidationError / std::invalid_argument /
// JSON errors to 400 naming the field, and anything else to 500 (logged). Never throws.
httplib::Server::Handler guarded(ServerState& state, RouteFn fn);

// Parses the request body as JSON (400 "malformed JSON body: ..." otherwise). An empty body is {}.
nlohmann::json parse_body(const httplib::Request& req);
nlohmann::ordered_json parse_body_ordered(const httplib::Request& req);

void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = {}, const std::string& code = {});

// One SSE event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& body);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// Token ids from a client: every id must be inside the vocabulary (400 naming `field`).
void check_token_ids(const ServerState& state, const std::vector<int32_t>& ids, const char* field);

// Registers the route families (routes_native.cpp, routes_openai.cpp).
void register_native_routes(httplib::Server& server, ServerState& state);
void register_openai_routes(httplib::Server& server, ServerState& state);
void register_expert_routes(httplib::Server& server, ServerState& state);  // routes_expert.cpp
// /load_lora_adapter and /unload_lora_adapter (routes_lora.cpp).
void register_lora_routes(httplib::Server& server, ServerState& state);
// /v1/embeddings and /encode (routes_embeddings.cpp).
void register_embedding_routes(httplib::Server& server, ServerState& state);
// /classify and /v1/rerank (routes_scoring.cpp).
void register_scoring_routes(httplib::Server& server, ServerState& state);
// Health, readiness, model/server info, /v1/models, /metrics, / (routes_info.cpp).
void register_info_routes(httplib::Server& server, ServerState& state);
// /parse_function_call and /separate_reasoning (routes_parsers.cpp).
void register_parser_routes(httplib::Server& server, ServerState& state);
// SGLang's routes that Sable does not implement: 501 naming the feature
// (routes_not_implemented.cpp).
void register_not_implemented_routes(httplib::Server& server, ServerState& state);

}  // namespace sable::server
