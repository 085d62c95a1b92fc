// The Hub's HTTP requests over libcurl (TLS, redirects, proxies from http_proxy / https_proxy /
// no_proxy, all handled by libcurl). One HubHttp owns one curl handle and is used by one thread at a
// time; the download pool gives each worker its own. Transport failures throw NetworkError; HTTP
// statuses come back to the caller, which knows which repo and file they concern.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "core/model_source/hub_settings.h"

namespace sable::model_source {

class NetworkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpReply {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; the last hop's headers
  std::string body;                            // empty for HEAD and for downloads to a file

  // The header's value, "" when absent; `name` in lower case.
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// scheme://host[:port] of a URL (the whole text when it has no path).
std::string url_origin(const std::string& url);

// Percent-encodes everything but [A-Za-z0-9_.~-] and the characters of `safe` (Python's quote).
std::string url_quote(const std::string& text, const std::string& safe = "/");

class HubHttp {
 public:
  explicit HubHttp(const HubSettings& hub);
  ~HubHttp();
  HubHttp(const HubHttp&) = delete;
  HubHttp& operator=(const HubHttp&) = delete;

  // GET with redirects followed; the body in the reply.
  HttpReply get(const std::string& url);
  // HEAD without following redirects, except relative ones (a renamed repo), as huggingface_hub's
  // get_hf_file_metadata: a 302 to the CDN comes back with its Location and X-Linked-* headers.
  HttpReply head(const std::string& url);
  // GET `url` (redirects followed) appending the body to file descriptor `fd`, asking for bytes from
  // `offset` on (a Range request) when offset > 0. `on_status(status)` runs once the status is
  // known and before any byte is written: it may truncate the file (a 200 to a Range request) and
  // returns false to write nothing. `on_bytes(n)` counts written bytes. The transfer stops with a
  // NetworkError when `cancel` becomes true. A failed write() throws std::system_error (errno).
  HttpReply download(const std::string& url, int fd, int64_t offset,
                     const std::function<bool(long)>& on_status,
                     const std::function<void(int64_t)>& on_bytes, const std::atomic<bool>& cancel);

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace sable::model_source
