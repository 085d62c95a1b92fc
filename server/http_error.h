// HTTP errors as values: one exception type that handlers throw for anything a client did wrong or
// the server cannot do right now, and the one JSON body every error answer carries.
//
// Every route answers errors in OpenAI's shape, {"error": {"message", "type", "param", "code"}},
// which also satisfies SGLang's native shape ({"error": {"message"}}) since it only adds keys.
// The wrapper in http_server.cpp maps HttpError to its status, sampling::ValidationError (and other
// std::invalid_argument) to 400, and anything else to 500 with a log line.
#pragma once

#include <stdexcept>
#include <string>

namespace sable::server {

class HttpError : public std::runtime_error {
 public:
  // `param` names the offending request field ("" = null); `code` is OpenAI's string code
  // ("" = the status number).
  HttpError(int status, std::string message, std::string param = {}, std::string code = {});
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

  // Shorthands for the statuses the server uses.
  static HttpError bad_request(std::string message, std::string param = {});
  static HttpError not_found(std::string message, std::string param = {}, std::string code = {});
  static HttpError unavailable(std::string message);

 private:
  int status_;
  std::string param_;
  std::string code_;
};

// OpenAI's error "type" for a status: invalid_request_error, authentication_error, ...
const char* error_type_for_status(int status);

// {"error": {"message", "type", "param", "code"}} serialized; param null when empty, code the
// status number when empty.
std::string error_body(int status, const std::string& message, const std::string& param = {},
                       const std::string& code = {});
std::string error_body(const HttpError& error);

}  // namespace sable::server
