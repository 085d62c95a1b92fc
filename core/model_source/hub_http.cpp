// libcurl behind HubHttp (see hub_http.h).
#include "core/model_source/hub_http.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <system_error>

namespace sable::model_source {

namespace {

constexpr const char* kUserAgent = "sable/0.1.0; hf_hub-compatible";
constexpr int kMaxRelativeRedirects = 5;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Headers of the last response only: a new status line clears what earlier hops sent.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();
  } else if (const size_t colon = line.find(':'); colon != std::string::npos) {
    size_t v = colon + 1;
    while (v < line.size() && line[v] == ' ') ++v;
    (*headers)[lower(line.substr(0, colon))] = line.substr(v);
  }
  return size * count;
}

size_t on_body_text(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct DownloadState {
  CURL* curl;
  int fd;
  const std::function<bool(long)>* on_status;
  const std::function<void(int64_t)>* on_bytes;
  const std::atomic<bool>* cancel;
  bool status_seen = false;
  bool keep = true;
  int write_errno = 0;
};

size_t on_body_file(char* data, size_t size, size_t count, void* user) {
  auto* s = static_cast<DownloadState*>(user);
  const size_t n = size * count;
  if (!s->status_seen) {
    s->status_seen = true;
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    s->keep = (*s->on_status)(status);
  }
  if (!s->keep) return n;  // an error page: read and dropped
  for (size_t done = 0; done < n;) {
    const ssize_t w = ::write(s->fd, data + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      s->write_errno = errno;
      return 0;  // CURLE_WRITE_ERROR
    }
    done += static_cast<size_t>(w);
  }
  (*s->on_bytes)(static_cast<int64_t>(n));
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

}  // namespace

struct HubHttp::Impl {
  CURL* curl = nullptr;
  curl_slist* base_headers = nullptr;   // user agent etc., sent everywhere
  curl_slist* auth_headers = nullptr;   // base + Authorization, sent to the endpoint only
  std::string endpoint_origin;

  void reset(const std::string& url, std::map<std::string, std::string>* headers) {
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
    // The token goes to the Hub itself, never to a CDN host it redirects to.
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER,
                     url_origin(url) == endpoint_origin ? auth_headers : base_headers);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    // A stalled transfer (under 1 byte/s for 30 s) is a network failure, not a hang.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  }

  void perform(const std::string& url) {
    const CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
      throw NetworkError(fmt::format("{} ({})", curl_easy_strerror(rc), url));
    }
  }
};

std::string url_origin(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? url : url.substr(0, slash);
}

std::string url_quote(const std::string& text, const std::string& safe) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~' ||
        safe.find(static_cast<char>(c)) != std::string::npos) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

HubHttp::HubHttp(const HubSettings& hub) : impl_(new Impl) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->curl = curl_easy_init();
  if (!impl_->curl) {
    delete impl_;
    throw NetworkError("libcurl could not start a transfer handle");
  }
  impl_->endpoint_origin = url_origin(hub.endpoint);
  for (curl_slist** list : {&impl_->base_headers, &impl_->auth_headers}) {
    *list = curl_slist_append(*list, "Accept-Encoding: identity");  // sizes of the real bytes
  }
  if (!hub.token.empty()) {
    impl_->auth_headers =
        curl_slist_append(impl_->auth_headers, ("Authorization: Bearer " + hub.token).c_str());
  }
}

HubHttp::~HubHttp() {
  curl_slist_free_all(impl_->base_headers);
  curl_slist_free_all(impl_->auth_headers);
  curl_easy_cleanup(impl_->curl);
  delete impl_;
}

HttpReply HubHttp::get(const std::string& url) {
  HttpReply r;
  impl_->reset(url, &r.headers);
  curl_easy_setopt(impl_->curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(impl_->curl, CURLOPT_WRITEFUNCTION, on_body_text);
  curl_easy_setopt(impl_->curl, CURLOPT_WRITEDATA, &r.body);
  impl_->perform(url);
  curl_easy_getinfo(impl_->curl, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

HttpReply HubHttp::head(const std::string& url) {
  std::string current = url;
  for (int hop = 0;; ++hop) {
    HttpReply r;
    impl_->reset(current, &r.headers);
    curl_easy_setopt(impl_->curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(impl_->curl, CURLOPT_FOLLOWLOCATION, 0L);
    impl_->perform(current);
    curl_easy_getinfo(impl_->curl, CURLINFO_RESPONSE_CODE, &r.status);
    const auto location = r.headers.find("location");
    const bool relative = location != r.headers.end() && !location->second.empty() &&
                          location->second[0] == '/';
    if (r.status < 300 || r.status >= 400 || !relative || hop == kMaxRelativeRedirects) return r;
    current = url_origin(current) + location->second;
  }
}

HttpReply HubHttp::download(const std::string& url, int fd, int64_t offset,
                            const std::function<bool(long)>& on_status,
                            const std::function<void(int64_t)>& on_bytes,
                            const std::atomic<bool>& cancel) {
  HttpReply r;
  impl_->reset(url, &r.headers);
  DownloadState state{impl_->curl, fd, &on_status, &on_bytes, &cancel};
  curl_easy_setopt(impl_->curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(impl_->curl, CURLOPT_WRITEFUNCTION, on_body_file);
  curl_easy_setopt(impl_->curl, CURLOPT_WRITEDATA, &state);
  curl_easy_setopt(impl_->curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(impl_->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(impl_->curl, CURLOPT_XFERINFODATA, &cancel);
  const std::string range = fmt::format("{}-", offset);
  if (offset > 0) curl_easy_setopt(impl_->curl, CURLOPT_RANGE, range.c_str());
  const CURLcode rc = curl_easy_perform(impl_->curl);
  curl_easy_getinfo(impl_->curl, CURLINFO_RESPONSE_CODE, &r.status);
  if (state.write_errno != 0) throw std::system_error(state.write_errno, std::generic_category());
  if (rc == CURLE_ABORTED_BY_CALLBACK) throw NetworkError("cancelled");
  if (rc != CURLE_OK) throw NetworkError(fmt::format("{} ({})", curl_easy_strerror(rc), url));
  if (!state.status_seen) on_status(r.status);  // an empty body still reports its status
  return r;
}

}  // namespace sable::model_source
