// Fetching an image over http(s) with libcurl, the library the Hub downloader uses (see
// image_source.h). One easy handle per call: image fetches are rare next to decoding and
// inference, and a fresh handle keeps the function thread-safe without a pool.
#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>
#include <mutex>

#include "core/image/image_source.h"

namespace sable::image {

namespace {

struct Sink {
  std::string body;
  int64_t limit = 0;
  bool over = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (static_cast<int64_t>(sink->body.size() + n) > sink->limit) {
    sink->over = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body.append(data, n);
  return n;
}

}  // namespace

std::string fetch_url(const std::string& url, const ImageLimits& limits) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw ImageError(ImageErrorKind::kUnreachable, "libcurl could not start a transfer");
  Sink sink;
  sink.limit = limits.max_bytes;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sable/0.1.0");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");  // no file:// through a redirect
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, limits.fetch_timeout_s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, limits.fetch_timeout_s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  // A Content-Length above the limit fails before any byte of the body is read.
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(limits.max_bytes));
  const CURLcode rc = curl_easy_perform(c);
  if (sink.over || rc == CURLE_FILESIZE_EXCEEDED)
    throw ImageError(ImageErrorKind::kTooLarge,
                     fmt::format("image at '{}' is too large (the limit is {} bytes)",
                                 describe_ref(url), limits.max_bytes));
  if (rc != CURLE_OK)
    throw ImageError(ImageErrorKind::kUnreachable,
                     fmt::format("image URL '{}' could not be fetched: {}", describe_ref(url),
                                 curl_easy_strerror(rc)));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200)
    throw ImageError(ImageErrorKind::kUnreachable,
                     fmt::format("image URL '{}' answered HTTP {}", describe_ref(url), status));
  if (sink.body.empty())
    throw ImageError(ImageErrorKind::kCorrupt,
                     fmt::format("image URL '{}' returned no data", describe_ref(url)));
  return std::move(sink.body);
}

}  // namespace sable::image
