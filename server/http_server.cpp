// The cpp-httplib server: worker pool, auth, body limit, error bodies, routes (see http_server.h).
#include "server/http_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>

#include "core/util/log.h"
#include "server/http_connection.h"
#include "server/http_error.h"
#include "server/route_util.h"
#include "server/server_state.h"

namespace sable::server {

namespace {

// Compares without an early exit so that the time taken does not reveal the key's prefix.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Probes need no key, as in SGLang: /health*, /ready.
bool auth_exempt(const httplib::Request& req) {
  return req.method == "OPTIONS" || req.path.rfind("/health", 0) == 0 || req.path == "/ready";
}

// A request without Content-Length and without chunked Transfer-Encoding has no body (RFC 9112
// section 6.3), as `curl -X POST /flush_cache` sends it. cpp-httplib 0.11 instead reads such a body
// until the connection closes, so a client that keeps it open gets "HTTP 400" after the read
// timeout. Marking the body empty before routing makes every route take the request at once (a
// route that needs input then answers 400 naming the missing field). The pre-routing hook only
// gets a const view of the request httplib owns and is about to read, hence the cast.
void mark_bodiless(const httplib::Request& req) {
  if (req.method != "POST" && req.method != "PUT" && req.method != "PATCH" &&
      req.method != "DELETE") {
    return;
  }
  if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) return;
  const_cast<httplib::Request&>(req).set_header("Content-Length", "0");
}

}  // namespace

struct HttpServer::Impl {
  Impl(const config::ServerConfig& config, Backend& backend)
      : state(config, backend),
        http(std::chrono::milliseconds(static_cast<int64_t>(config.request_timeout_s * 1000)),
             config.max_request_body_bytes) {}
  ServerState state;
  ConnectionServer http;
  std::atomic<int> listen_fd{-1};
};

HttpServer::HttpServer(const config::ServerConfig& config, Backend& backend)
    : impl_(std::make_unique<Impl>(config, backend)) {
  auto& svr = impl_->http;
  ServerState& state = impl_->state;
  svr.new_task_queue = [] { return new httplib::ThreadPool(kHttpWorkerThreads); };
  svr.set_tcp_nodelay(true);
  // Remember the listening socket so that bind() can raise httplib's small accept backlog.
  svr.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl_->listen_fd = static_cast<int>(sock);
  });

  svr.set_pre_routing_handler([&state](const httplib::Request& req, httplib::Response& res) {
    mark_bodiless(req);
    const std::string& key = state.config.api_key;
    if (key.empty() || auth_exempt(req)) return httplib::Server::HandlerResponse::Unhandled;
    const std::string header = req.get_header_value("Authorization");
    if (same_secret(header, "Bearer " + key)) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, 401, "Unauthorized: send the API key as 'Authorization: Bearer <key>'", "",
               "invalid_api_key");
    state.metrics.count_http_error(401);
    return httplib::Server::HandlerResponse::Handled;
  });
  // Errors httplib produces itself (unknown route, body too large) get the same JSON body.
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [&state, &svr](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 400 && ConnectionServer::request_timed_out()) {
      // A slow client: its request did not arrive in time (the connection closes after this).
      res.status = 408;
      res.set_content(svr.request_timeout_body(), "application/json");
      state.metrics.count_http_error(408);
      return httplib::Server::HandlerResponse::Handled;
    }
    state.metrics.count_http_error(res.status);
    if (res.status == 404) {
      send_error(res, 404, fmt::format("Not found: {} {}", req.method, req.path), "", "not_found");
    } else if (res.status == 413) {
      send_error(res, 413,
                 fmt::format("The request body is larger than max_request_body_bytes ({} bytes)",
                             state.config.max_request_body_bytes),
                 "body", "request_too_large");
    } else {
      const int status = res.status;
      send_error(res, status, fmt::format("HTTP {}", status));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                               std::exception_ptr) {
    log::error("{} {}: unhandled exception", req.method, req.path);
    send_error(res, 500, "Internal server error");
  });

  register_native_routes(svr, state);
  register_info_routes(svr, state);
  register_openai_routes(svr, state);
  register_expert_routes(svr, state);
  register_lora_routes(svr, state);
  register_embedding_routes(svr, state);
  register_scoring_routes(svr, state);
  register_parser_routes(svr, state);
  register_not_implemented_routes(svr, state);
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  const auto& c = impl_->state.config;
  int port = 0;
  if (c.port == 0) {
    port = impl_->http.bind_to_any_port(c.host);
  } else {
    port = impl_->http.bind_to_port(c.host, static_cast<int>(c.port)) ? static_cast<int>(c.port)
                                                                       : -1;
  }
  if (port <= 0) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{} (address in use or not local?)",
                                         c.host, c.port));
  }
  // httplib listens with a backlog of 5; many clients connecting at once need more.
  if (const int fd = impl_->listen_fd.load(); fd >= 0) ::listen(fd, 1024);
  return port;
}

void HttpServer::serve() { impl_->http.listen_after_bind(); }
void HttpServer::set_ready() { impl_->state.ready = true; }
void HttpServer::begin_drain() { impl_->state.draining = true; }
// The listening socket is shut down first: a serve() that has not reached accept() yet (stop right
// after bind) then returns at once instead of blocking forever, since httplib's own stop() acts
// only once its accept loop runs. The descriptor is taken once, so a second stop (the destructor)
// never shuts down a number the system has given to another socket since.
void HttpServer::stop() {
  if (const int fd = impl_->listen_fd.exchange(-1); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  impl_->http.shutdown();
}
std::string HttpServer::handle_raw(std::string_view request) {
  return impl_->http.process_raw(request);
}
int64_t HttpServer::in_flight() const { return impl_->state.in_flight.load(); }
ServerState& HttpServer::state() { return impl_->state; }

}  // namespace sable::server
