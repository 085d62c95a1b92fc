// The connection loop and the two streams it serves requests over (see http_connection.h): a socket
// with a per-request read deadline and byte budget, and a memory buffer.
#include "server/http_connection.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "server/http_error.h"

namespace sable::server {

namespace {

using Clock = std::chrono::steady_clock;

thread_local bool t_request_timed_out = false;

int poll_one(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r > 0 && (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events)) return -1;
  return r;
}

void address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (r != 0) return;
  char text[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    port = ntohs(a->sin6_port);
  }
  ip = text;
}

// A client socket as httplib's Stream, for the whole connection: reads are buffered (httplib reads
// the request line a byte at a time) and the buffer carries pipelined requests over from one
// request to the next. Each request's reads share one deadline and one byte budget
// (begin_request); a read past either fails, and marks the request timed out when it was the
// deadline. Writes wait up to kWriteTimeout for room and fail once the peer has closed (how a
// streaming handler learns that its client went away).
class SocketStream : public httplib::Stream {
 public:
  explicit SocketStream(int fd) : fd_(fd) {}

  void begin_request(Clock::time_point deadline, int64_t max_bytes) {
    deadline_ = deadline;
    budget_ = max_bytes - static_cast<int64_t>(len_ - off_);  // pipelined bytes count too
  }
  bool has_buffered() const { return off_ < len_; }

  bool is_readable() const override {
    if (off_ < len_) return true;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
    if (left.count() > 0 && poll_one(fd_, POLLIN, static_cast<int>(left.count())) > 0) return true;
    t_request_timed_out = true;  // no byte before the deadline
    return false;
  }

  bool is_writable() const override {
    if (poll_one(fd_, POLLOUT, static_cast<int>(kWriteTimeout.count() * 1000)) <= 0) return false;
    // Still connected? Readable with nothing to read means the peer closed.
    if (poll_one(fd_, POLLIN, 0) == 0) return true;
    char byte;
    return ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ == len_) {
      if (budget_ <= 0 || !is_readable()) return -1;
      ssize_t n;
      do {
        n = ::recv(fd_, buf_.data(), buf_.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      budget_ -= n;
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
    const size_t take = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_.data() + off_, take);
    off_ += take;
    return static_cast<ssize_t>(take);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address_of(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address_of(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  int fd_;
  Clock::time_point deadline_{};
  int64_t budget_ = 0;
  std::array<char, 4096> buf_{};
  size_t off_ = 0, len_ = 0;
};

// A request read from memory and its response written to memory.
class MemoryStream : public httplib::Stream {
 public:
  explicit MemoryStream(std::string_view in) : in_(in) {}
  bool is_readable() const override { return pos_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t take = std::min(size, in_.size() - pos_);
    std::memcpy(ptr, in_.data() + pos_, take);
    pos_ += take;
    return static_cast<ssize_t>(take);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  socket_t socket() const override { return 0; }
  std::string& output() { return out_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  std::string out_;
};

}  // namespace

ConnectionServer::ConnectionServer(std::chrono::milliseconds request_timeout,
                                   int64_t max_body_bytes)
    : request_timeout_(request_timeout), max_request_bytes_(max_body_bytes + kMaxHeaderBytes) {
  set_payload_max_length(static_cast<size_t>(max_body_bytes));
  // What the Keep-Alive response header announces (the loop below enforces it).
  set_keep_alive_max_count(kMaxRequestsPerConnection);
  set_keep_alive_timeout(kKeepAliveIdle.count());
}

void ConnectionServer::shutdown() {
  stopping_ = true;
  if (is_running()) stop();
}

bool ConnectionServer::request_timed_out() { return t_request_timed_out; }

std::string ConnectionServer::request_timeout_body() const {
  return error_body(408,
                    fmt::format("The request did not arrive within request_timeout_s ({:g} s)",
                                static_cast<double>(request_timeout_.count()) / 1000.0),
                    "", "request_timeout");
}

// Waits for the first byte of the next request: false when the connection closed, stayed idle for
// kKeepAliveIdle, or the server is stopping.
bool ConnectionServer::wait_for_request(int fd) const {
  const auto idle_until = Clock::now() + kKeepAliveIdle;
  while (!stopping_.load()) {
    const int r = poll_one(fd, POLLIN, 100);
    if (r < 0) return false;
    if (r > 0) {
      char byte;
      return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;  // 0: the client closed
    }
    if (Clock::now() >= idle_until) return false;
  }
  return false;
}

bool ConnectionServer::process_and_close_socket(socket_t sock) {
  const int fd = static_cast<int>(sock);
  SocketStream stream(fd);
  bool ok = false;
  for (int served = 0; served < kMaxRequestsPerConnection; ++served) {
    if (!stream.has_buffered() && !wait_for_request(fd)) break;
    stream.begin_request(Clock::now() + request_timeout_, max_request_bytes_);
    t_request_timed_out = false;
    bool closed = false;
    const bool last = served + 1 == kMaxRequestsPerConnection || stopping_.load();
    ok = process_request(stream, last, closed, nullptr);
    if (!ok && t_request_timed_out) {
      // Timed out before its request line was whole: httplib gives up without an answer.
      const std::string body = request_timeout_body();
      const std::string head = "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                               "Connection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n";
      stream.write(head.data(), head.size());
      stream.write(body.data(), body.size());
    }
    if (!ok || closed || t_request_timed_out) break;
  }
  t_request_timed_out = false;
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  return ok;
}

std::string ConnectionServer::process_raw(std::string_view request) {
  MemoryStream stream(request);
  t_request_timed_out = false;
  bool closed = false;
  process_request(stream, /*close_connection=*/true, closed, nullptr);
  return std::move(stream.output());
}

}  // namespace sable::server
