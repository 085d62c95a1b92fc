// The limits on fetching an image over http (core/image/fetch_url.cpp): a server that never
// answers costs at most ImageLimits::fetch_timeout_s, and a body over ImageLimits::max_bytes is
// refused whether the server announces its length (refused before the body is read) or streams it
// without one (cut off as soon as the limit is passed), so a URL can neither hang a request nor
// make the server buffer without bound. A plain loopback TCP server plays each misbehaving peer.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "core/image/image_error.h"
#include "core/image/image_source.h"

namespace sable::image {
namespace {

// Accepts one connection on a free loopback port and hands it to `serve` on its own thread.
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(int)> serve) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(listener_, 1), 0);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, serve] {
      const int conn = accept(listener_, nullptr, nullptr);
      if (conn < 0) return;
      char request[4096];
      (void)!recv(conn, request, sizeof(request), 0);  // the GET; its content does not matter
      serve(conn);
      close(conn);
    });
  }
  ~OneShotServer() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/image.png"; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

void send_all(int fd, const std::string& s) {
  size_t at = 0;
  while (at < s.size()) {
    const ssize_t n = send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client hung up (it stopped reading at the limit)
    at += static_cast<size_t>(n);
  }
}

ImageErrorKind fetch_error(const std::string& url, const ImageLimits& limits, std::string* msg) {
  try {
    read_image_bytes(url, limits);
  } catch (const ImageError& e) {
    *msg = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no error fetching " << url;
  return ImageErrorKind::kInvalid;
}

TEST(ImageFetch, ASilentServerTimesOut) {
  std::atomic<bool> done{false};
  OneShotServer server([&](int) {
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  ImageLimits limits;
  limits.fetch_timeout_s = 1;
  std::string msg;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(fetch_error(server.url(), limits, &msg), ImageErrorKind::kUnreachable);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  done = true;
  EXPECT_NE(msg.find("could not be fetched"), std::string::npos) << msg;
  EXPECT_LT(seconds, 10.0) << "the 1 s fetch limit did not stop the transfer";
}

TEST(ImageFetch, AnnouncedLengthOverTheLimitIsRefused) {
  OneShotServer server([](int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n");
  });
  ImageLimits limits;
  limits.max_bytes = 1000;
  std::string msg;
  EXPECT_EQ(fetch_error(server.url(), limits, &msg), ImageErrorKind::kTooLarge);
  EXPECT_NE(msg.find("the limit is 1000 bytes"), std::string::npos) << msg;
}

TEST(ImageFetch, StreamedBodyOverTheLimitIsCutOff) {
  OneShotServer server([](int fd) {
    // No Content-Length: the body ends when the connection closes; 64 KiB at a time.
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n");
    const std::string block(65536, 'x');
    for (int i = 0; i < 256; ++i) {  // 16 MiB if nobody stopped reading
      if (send(fd, block.data(), block.size(), MSG_NOSIGNAL) <= 0) break;
    }
  });
  ImageLimits limits;
  limits.max_bytes = 100000;
  std::string msg;
  EXPECT_EQ(fetch_error(server.url(), limits, &msg), ImageErrorKind::kTooLarge);
  EXPECT_NE(msg.find("too large"), std::string::npos) << msg;
}

TEST(ImageFetch, ABodyWithinTheLimitArrivesWhole) {
  const std::string body(5000, 'p');
  OneShotServer server([&](int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" + body);
  });
  ImageLimits limits;
  limits.max_bytes = 5000;  // exactly the body
  EXPECT_EQ(read_image_bytes(server.url(), limits), body);
}

}  // namespace
}  // namespace sable::image
