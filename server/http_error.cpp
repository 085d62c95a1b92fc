// HTTP error values and OpenAI-shaped error bodies (see http_error.h).
#include "server/http_error.h"

#include <nlohmann/json.hpp>

namespace sable::server {

HttpError::HttpError(int status, std::string message, std::string param, std::string code)
    : std::runtime_error(std::move(message)),
      status_(status),
      param_(std::move(param)),
      code_(std::move(code)) {}

HttpError HttpError::bad_request(std::string message, std::string param) {
  return HttpError(400, std::move(message), std::move(param));
}
HttpError HttpError::not_found(std::string message, std::string param, std::string code) {
  return HttpError(404, std::move(message), std::move(param), std::move(code));
}
HttpError HttpError::unavailable(std::string message) {
  return HttpError(503, std::move(message), {}, "overloaded");
}

const char* error_type_for_status(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404:
    case 400:
    case 405:
    case 413:
    case 415:
    case 422: return "invalid_request_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string error_body(int status, const std::string& message, const std::string& param,
                       const std::string& code) {
  nlohmann::json error = {{"message", message},
                          {"type", error_type_for_status(status)},
                          {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                          {"code", code.empty() ? nlohmann::json(status) : nlohmann::json(code)}};
  return nlohmann::json{{"error", std::move(error)}}.dump(-1, ' ', false,
                                                         nlohmann::json::error_handler_t::replace);
}

std::string error_body(const HttpError& error) {
  return error_body(error.status(), error.what(), error.param(), error.code());
}

}  // namespace sable::server
