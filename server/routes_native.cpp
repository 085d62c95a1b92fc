// SGLang's native routes: /generate (streaming and not), cache and weight control,
// tokenize/detokenize, abort. (Info, health and /metrics: routes_info.cpp.) Shapes:
// spec/sglang_api.md section 1.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"
#include "core/util/log.h"
#include "server/generate_api.h"
#include "server/http_error.h"
#include "server/model_kind.h"
#include "server/native_calls.h"
#include "server/route_util.h"
#include "server/stream_pump.h"

namespace sable::server {

namespace {

using nlohmann::json;

constexpr const char* kFlushText =
    "Cache flushed.\nPlease check backend logs for more details. (When there are running or "
    "waiting requests, the operation will not be performed.)\n";

void handle_generate(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  require_model_kind(state, "/generate", {kGenerationKind});
  state.check_admission();
  std::shared_ptr<GenerateCall> call = submit_generate(state, body);
  const bool incremental = state.config.incremental_streaming_output;

  if (!call->request.stream) {
    pump_generations(call->gens, state.metrics,
                     [&](size_t i, const Delta& d) {
                       call->outputs[i].apply(d);
                       return true;
                     },
                     [] { return true; });
    send_json(res, generate_response(*call, state.tokenizer));
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [&state, call, incremental](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        const bool finished = pump_generations(
            call->gens, state.metrics,
            [&](size_t i, const Delta& d) {
              if (is_error_abort(d.finish)) {
                call->outputs[i].apply(d);
                return write(sse_event({{"error", {{"message", d.finish->message},
                                                   {"code", d.finish->status_code}}}}));
              }
              const json chunk = stream_chunk(*call, i, d, incremental, state.tokenizer);
              return chunk.is_null() || write(sse_event(chunk));
            },
            [&] { return sink.is_writable(); });
        if (!finished) return false;  // the client went away: ~GenerateCall aborts the rest
        write(kSseDone);
        sink.done();
        return true;
      });
}

void handle_tokenize(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  state.require_tokenizer("prompt");
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  if (body.contains("model") && body["model"].is_string()) {
    state.require_model(body["model"].get<std::string>());
  }
  bool add_special = true;
  if (body.contains("add_special_tokens")) {
    if (!body["add_special_tokens"].is_boolean()) {
      throw HttpError::bad_request("add_special_tokens must be a boolean", "add_special_tokens");
    }
    add_special = body["add_special_tokens"].get<bool>();
  }
  const json prompt = body.value("prompt", json(nullptr));
  const int64_t max_len = state.facts.context_length;
  if (prompt.is_string()) {
    auto ids = state.tokenizer.encode(prompt.get<std::string>(), add_special);
    send_json(res, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", max_len}});
    return;
  }
  if (prompt.is_array()) {
    json tokens = json::array(), counts = json::array();
    for (const auto& p : prompt) {
      if (!p.is_string()) throw HttpError::bad_request("prompt must be a string or a list of strings", "prompt");
      auto ids = state.tokenizer.encode(p.get<std::string>(), add_special);
      counts.push_back(ids.size());
      tokens.push_back(std::move(ids));
    }
    send_json(res, {{"tokens", tokens}, {"count", counts}, {"max_model_len", max_len}});
    return;
  }
  throw HttpError::bad_request("prompt is required: a string or a list of strings", "prompt");
}

std::vector<int32_t> ids_of(const ServerState& state, const json& v) {
  std::vector<int32_t> ids;
  for (const auto& x : v) {
    if (!x.is_number_integer()) throw HttpError::bad_request("tokens must be integers", "tokens");
    const int64_t id = x.get<int64_t>();
    if (id < 0 || id > INT32_MAX) {
      throw HttpError::bad_request(fmt::format("tokens has an invalid id {}", id), "tokens");
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  check_token_ids(state, ids, "tokens");
  return ids;
}

void handle_detokenize(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  state.require_tokenizer("tokens");
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  bool skip = true;
  if (body.contains("skip_special_tokens")) {
    if (!body["skip_special_tokens"].is_boolean()) {
      throw HttpError::bad_request("skip_special_tokens must be a boolean", "skip_special_tokens");
    }
    skip = body["skip_special_tokens"].get<bool>();
  }
  const json tokens = body.value("tokens", json(nullptr));
  if (!tokens.is_array()) throw HttpError::bad_request("tokens must be a list of token ids", "tokens");
  if (!tokens.empty() && tokens.front().is_array()) {
    json texts = json::array();
    for (const auto& row : tokens) {
      if (!row.is_array()) throw HttpError::bad_request("tokens must be a list of lists", "tokens");
      texts.push_back(state.tokenizer.decode(ids_of(state, row), skip));
    }
    send_json(res, {{"text", texts}});
    return;
  }
  send_json(res, {{"text", state.tokenizer.decode(ids_of(state, tokens), skip)}});
}

void handle_update_weights(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_body(req);
  const json path = body.is_object() ? body.value("model_path", json(nullptr)) : json(nullptr);
  if (!path.is_string() || path.get<std::string>().empty()) {
    throw HttpError::bad_request("model_path is required: the folder of the new checkpoint",
                                 "model_path");
  }
  const WeightUpdateResult r = state.backend.update_weights_from_disk(path.get<std::string>());
  if (r.success) log::info("weights updated from {}", path.get<std::string>());
  else log::warn("weight update from {} failed: {}", path.get<std::string>(), r.message);
  send_json(res,
            {{"success", r.success},
             {"message", r.message},
             {"num_paused_requests", r.num_paused_requests}},
            r.success ? 200 : 400);
}

}  // namespace

void register_native_routes(httplib::Server& svr, ServerState& state) {
  auto generate = guarded(state, [&state](const auto& req, auto& res) {
    handle_generate(state, req, res);
  });
  svr.Post("/generate", generate);
  svr.Put("/generate", generate);

  auto flush = guarded(state, [&state](const auto&, auto& res) {
    const bool done = state.backend.flush_cache();
    res.status = done ? 200 : 400;
    res.set_content(kFlushText, "text/plain");
  });
  svr.Get("/flush_cache", flush);
  svr.Post("/flush_cache", flush);

  svr.Post("/update_weights_from_disk", guarded(state, [&state](const auto& req, auto& res) {
    handle_update_weights(state, req, res);
  }));

  auto tokenize = guarded(state, [&state](const auto& req, auto& res) {
    handle_tokenize(state, req, res);
  });
  svr.Post("/tokenize", tokenize);
  svr.Post("/v1/tokenize", tokenize);
  auto detokenize = guarded(state, [&state](const auto& req, auto& res) {
    handle_detokenize(state, req, res);
  });
  svr.Post("/detokenize", detokenize);
  svr.Post("/v1/detokenize", detokenize);

  svr.Post("/abort_request", guarded(state, [&state](const auto& req, auto& res) {
    const json body = parse_body(req);
    if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
    const bool all = body.value("abort_all", json(false)).is_boolean() && body.value("abort_all", false);
    const json rid = body.value("rid", json(""));
    if (!rid.is_string()) throw HttpError::bad_request("rid must be a string", "rid");
    if (all) {
      state.backend.abort_all("Aborted by request");
    } else if (rid.get<std::string>().empty()) {
      throw HttpError::bad_request("rid is required unless abort_all is true", "rid");
    } else {
      state.backend.abort(rid.get<std::string>());
    }
    res.status = 200;
  }));
}

}  // namespace sable::server
