// SGLang's LoRA routes: POST /load_lora_adapter {lora_name, lora_path} and POST
// /unload_lora_adapter {lora_name}. Both answer SGLang's shape {success, error_message,
// loaded_adapters: {name: path}}; a refused call (LoRA off, an unknown or busy adapter, an adapter
// that does not fit the model) is a 400 naming the field and the problem.
#include <nlohmann/json.hpp>

#include "server/http_error.h"
#include "server/route_util.h"

namespace sable::server {

namespace {

using nlohmann::json;

std::string required_string(const json& body, const char* field) {
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  auto it = body.find(field);
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty())
    throw HttpError::bad_request(std::string(field) + ": required (a non-empty string)", field);
  return it->get<std::string>();
}

json loaded(const ServerState& state) {
  json out = json::object();
  for (const auto& a : state.backend.lora_adapters()) out[a.name] = a.path;
  return out;
}

}  // namespace

void register_lora_routes(httplib::Server& svr, ServerState& state) {
  svr.Post("/load_lora_adapter", guarded(state, [&state](const auto& req, auto& res) {
    const json body = parse_body(req);
    const std::string name = required_string(body, "lora_name");
    const std::string path = required_string(body, "lora_path");
    state.backend.load_lora_adapter(name, path);
    send_json(res, {{"success", true}, {"error_message", ""}, {"loaded_adapters", loaded(state)}});
  }));
  svr.Post("/unload_lora_adapter", guarded(state, [&state](const auto& req, auto& res) {
    const json body = parse_body(req);
    state.backend.unload_lora_adapter(required_string(body, "lora_name"));
    send_json(res, {{"success", true}, {"error_message", ""}, {"loaded_adapters", loaded(state)}});
  }));
}

}  // namespace sable::server
