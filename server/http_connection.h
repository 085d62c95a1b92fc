// How one client connection is served: cpp-httplib's Server with its per-connection loop replaced.
//
// httplib 0.11 bounds each read of a request by a per-read timeout only, so a client that sends its
// request a byte at a time (slow loris) holds a worker thread for as long as it likes, and an idle
// keep-alive connection holds shutdown until its idle timeout. ConnectionServer keeps httplib's
// parsing, routing and handlers and serves each connection with its own loop instead:
//   - each request must arrive whole (request line, headers, body) within request_timeout of its
//     first byte, and may not carry more than max_request_bytes; a late one gets 408 and the
//     connection is closed (request_timed_out() tells the error handler);
//   - requests on one connection are answered one at a time, in order (HTTP/1.1, pipelining too),
//     at most kMaxRequestsPerConnection of them;
//   - an idle connection is closed after kKeepAliveIdle, and at once when the server stops.
// It also answers a raw request from memory (process_raw), for the fuzzers and tests.
//
// Thread-safety: process_raw and the connection loops run on any number of threads at once;
// shutdown() may be called from any thread.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sable::server {

// Longer than the time clients keep an idle pooled connection (httpx, the openai client: 5 s;
// aiohttp: 15 s), so that the client closes first. A server that closes first races a client
// sending its next request on that connection, which then fails without an answer (the 60-minute
// soak with aiohttp saw 3 such "Server disconnected" in 22326 requests at 5 s).
inline constexpr std::chrono::seconds kKeepAliveIdle{20};
inline constexpr std::chrono::seconds kWriteTimeout{60};
inline constexpr int kMaxRequestsPerConnection = 1000;
// Bytes a request may carry beyond its body (request line and headers).
inline constexpr int64_t kMaxHeaderBytes = 1 << 20;

class ConnectionServer : public httplib::Server {
 public:
  // request_timeout: the time one request has to arrive; max_body_bytes: the body limit (httplib
  // answers 413 above it), which with kMaxHeaderBytes bounds what one request may send.
  ConnectionServer(std::chrono::milliseconds request_timeout, int64_t max_body_bytes);

  // Stops accepting, ends idle keep-alive connections, lets the requests being answered finish.
  void shutdown();

  // Answers one raw HTTP/1.1 request from memory, as a connection would (routing, handlers, error
  // bodies), and returns the raw response bytes. Streamed bodies are written only between bind
  // and shutdown (httplib stops streaming once its listening socket is closed).
  std::string process_raw(std::string_view request);

  // True on the thread serving a request whose read ran out of time (the error handler answers 408).
  static bool request_timed_out();
  // The JSON error body of a 408 answer.
  std::string request_timeout_body() const;

 private:
  bool process_and_close_socket(socket_t sock) override;
  bool wait_for_request(int fd) const;

  const std::chrono::milliseconds request_timeout_;
  const int64_t max_request_bytes_;
  std::atomic<bool> stopping_{false};
};

}  // namespace sable::server
