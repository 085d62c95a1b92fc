// The JSON schema that constrains a forced tool_choice ("required" / a named function) and the
// ids of tool calls; declared in tool_call_parser.h beside the parser that reads the output back.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <random>

#include "server/call_object_scan.h"
#include "server/tool_call_parser.h"

namespace sable::server {

using nlohmann::ordered_json;

std::string forced_tool_schema(const ordered_json& tools, const std::string* named, bool parallel) {
  ordered_json defs = ordered_json::object();
  std::vector<ordered_json> alternatives;
  for (const ordered_json& tool : tools) {
    const ordered_json& fn = tool.at("function");
    const std::string name = fn.at("name").get<std::string>();
    if (named && name != *named) continue;
    ordered_json params = ordered_json::object();
    params["type"] = "object";
    if (auto it = fn.find("parameters"); it != fn.end() && !it->is_null()) params = *it;
    if (auto d = params.find("$defs"); d != params.end() && d->is_object()) {
      for (auto it = d->begin(); it != d->end(); ++it) defs[it.key()] = it.value();
      params.erase("$defs");
    }
    ordered_json name_schema = ordered_json::object();
    name_schema["const"] = name;
    ordered_json object = ordered_json::object();
    object["type"] = "object";
    object["properties"] = ordered_json::object();
    object["properties"]["name"] = std::move(name_schema);
    object["properties"]["parameters"] = std::move(params);
    object["required"] = ordered_json::array({"name", "parameters"});
    // The name first (the call streams from it), and arguments in declared order as with
    // xgrammar: parameters of any size compile; strict (xgrammar's strict_mode): no members
    // beyond the declared ones where additionalProperties is absent, so a call carries only the
    // function's parameters (the automaton grammar engine's options).
    object["x-sable"] = ordered_json{{"property_order", "declared"}, {"strict", true}};
    alternatives.push_back(std::move(object));
  }
  ordered_json schema;
  if (named) {
    schema = alternatives.empty() ? ordered_json::object() : alternatives.front();
  } else {
    schema = ordered_json::object();
    schema["type"] = "array";
    schema["minItems"] = 1;
    if (!parallel) schema["maxItems"] = 1;
    schema["items"] = ordered_json::object();
    schema["items"]["anyOf"] = ordered_json(alternatives);
  }
  if (!defs.empty()) schema["$defs"] = std::move(defs);
  return compact_json(schema);
}

std::string make_tool_call_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t hi = rng(), lo = rng();
  return fmt::format("call_{:08x}{:016x}", static_cast<uint32_t>(hi), lo);
}

}  // namespace sable::server
