// The native API's work as functions of JSON, shared by the HTTP routes and the Python binding
// (python/src): a /generate call (parse, tokenize, check, submit, shape the answer or each stream
// chunk), /encode, /get_model_info and /get_server_info. The routes add only HTTP around them, so
// `sable.Engine` answers with the very dicts `/generate` sends.
//
// Errors: HttpError (400 naming the field or context_length_exceeded, 503 draining/overloaded) or
// sampling::ValidationError, thrown before anything is queued. Thread-safety: as ServerState; a
// GenerateCall is used by one thread at a time.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "server/generate_api.h"
#include "server/server_state.h"

namespace sable::server {

// The submitted generations of one /generate call and what they produced so far. Destroying it
// aborts the generations that did not finish.
struct GenerateCall {
  explicit GenerateCall(ServerState& s) : in_flight(s) {}
  ServerState::InFlight in_flight;
  GenerateRequest request;
  std::vector<std::unique_ptr<Generation>> gens;
  std::vector<GenerateOutput> outputs;
  std::vector<NativeShape> shapes;
};

// Parses a /generate body, tokenizes and checks every item, then submits them all. `notify`, when
// set, is handed to each generation (Generation::set_notify): it runs on the engine's thread
// whenever output is ready.
std::unique_ptr<GenerateCall> submit_generate(ServerState& state, const nlohmann::json& body,
                                              std::function<void(bool final)> notify = {});

// True for a finish that is an error (status >= 400), not a client's abort.
bool is_error_abort(const std::optional<Finish>& finish);

// The answer of a finished call: one object, or an array for a batch request. Throws HttpError
// when an item ended with an error.
nlohmann::json generate_response(const GenerateCall& call, const tokenizer::Tokenizer& tok);

// Applies delta `d` to call.outputs[i] and returns its stream chunk: the cumulative state (or only
// the delta with incremental_streaming_output), with "index" for a batch. Null when the delta
// carries nothing to send. Callers check is_error_abort(d.finish) first.
nlohmann::json stream_chunk(GenerateCall& call, size_t i, const Delta& d, bool incremental,
                            const tokenizer::Tokenizer& tok);

// /encode's answer for a body with text or input_ids (routes_embeddings.cpp).
nlohmann::json encode_response(ServerState& state, const nlohmann::json& body,
                               const char* route = "/encode");

// /dump_expert_distribution_record's answer; also writes the CSV as SGLang does
// (routes_expert.cpp).
nlohmann::json expert_distribution_json(const ExpertDistributionDump& dump);

// /get_model_info and /get_server_info.
nlohmann::json model_info(ServerState& state);
nlohmann::json server_info(ServerState& state);

}  // namespace sable::server
