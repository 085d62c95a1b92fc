// The HTTP server: cpp-httplib with a worker pool sized for many concurrent SSE streams, SGLang's
// native routes and the OpenAI-compatible routes over a Backend, API-key auth, a request-body size
// limit, and one error wrapper so that no handler throws out (HttpError -> its status, invalid
// input -> 400 naming the field, anything else -> 500 with a log line).
//
// Connections are served by ConnectionServer (http_connection.h): a request must arrive within
// request_timeout_s (slow clients get 408), requests on one connection are answered in order.
//
// Life cycle: bind() -> serve() on some thread (blocks) -> set_ready() after the warm-up ->
// begin_drain() (health 503, new generation requests 503) -> stop() (stops accepting, waits for the
// workers, so in-flight requests finish or are aborted first by the caller).
// Thread-safety: set_ready/begin_drain/stop/in_flight may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/config/server_config.h"
#include "server/backend.h"

namespace sable::server {

struct ServerState;

class HttpServer {
 public:
  // `backend` must outlive the server. Throws std::runtime_error for a bad chat template or
  // preferred_sampling_params.
  HttpServer(const config::ServerConfig& config, Backend& backend);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds config.host:config.port (port 0: any free port) and returns the port. Throws
  // std::runtime_error naming the address when it cannot bind.
  int bind();
  // Accepts and serves until stop(). Call after bind().
  void serve();
  void set_ready();
  void begin_drain();
  void stop();
  int64_t in_flight() const;
  ServerState& state();
  // Answers one raw HTTP/1.1 request in-process, without a socket, exactly as a connection would
  // (auth, routing, handlers, error bodies); returns the raw response. For fuzzers and tests;
  // streamed bodies are written only between bind() and stop().
  std::string handle_raw(std::string_view request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Worker threads of the HTTP pool: each open SSE stream holds one.
inline constexpr int kHttpWorkerThreads = 256;

}  // namespace sable::server
