// The handler wrapper and the small I/O helpers of the routes (see route_util.h).
#include "server/route_util.h"

#include <fmt/format.h>

#include "core/util/log.h"
#include "server/http_error.h"

namespace sable::server {

namespace {
constexpr auto kJsonDump = nlohmann::json::error_handler_t::replace;
}

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, kJsonDump), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param, const std::string& code) {
  res.status = status;
  res.set_content(error_body(status, message, param, code), "application/json");
}

std::string sse_event(const nlohmann::json& body) {
  return "data: " + body.dump(-1, ' ', false, kJsonDump) + "\n\n";
}

nlohmann::json parse_body(const httplib::Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::exception& e) {
    throw HttpError::bad_request(fmt::format("malformed JSON body: {}", e.what()), "body");
  }
}

nlohmann::ordered_json parse_body_ordered(const httplib::Request& req) {
  if (req.body.empty()) return nlohmann::ordered_json::object();
  try {
    return nlohmann::ordered_json::parse(req.body);
  } catch (const nlohmann::json::exception& e) {
    throw HttpError::bad_request(fmt::format("malformed JSON body: {}", e.what()), "body");
  }
}

void check_token_ids(const ServerState& state, const std::vector<int32_t>& ids, const char* field) {
  const int64_t vocab = state.facts.vocab_size;
  for (int32_t id : ids) {
    if (id < 0 || (vocab > 0 && id >= vocab)) {
      throw HttpError::bad_request(
          fmt::format("{} has token id {} outside the vocabulary [0, {})", field, id, vocab), field);
    }
  }
}

httplib::Server::Handler guarded(ServerState& state, RouteFn fn) {
  return [&state, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    try {
      fn(req, res);
      return;
    } catch (const HttpError& e) {
      send_error(res, e.status(), e.what(), e.param(), e.code());
    } catch (const sampling::ValidationError& e) {
      send_error(res, 400, e.what(), e.field());
    } catch (const std::invalid_argument& e) {
      send_error(res, 400, e.what());
    } catch (const nlohmann::json::exception& e) {
      send_error(res, 400, fmt::format("invalid request: {}", e.what()));
    } catch (const std::exception& e) {
      log::error("{} {}: internal error: {}", req.method, req.path, e.what());
      send_error(res, 500, fmt::format("Internal server error: {}", e.what()));
    } catch (...) {
      log::error("{} {}: internal error (unknown exception)", req.method, req.path);
      send_error(res, 500, "Internal server error");
    }
    state.metrics.count_http_error(res.status);
  };
}

}  // namespace sable::server
