// One file of a Hub repo into the cache (see blob_fetch.h).
#include "core/model_source/blob_fetch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>

#include "core/model_source/hf_cache.h"
#include "core/model_source/hub_errors.h"
#include "core/model_source/resolve_model.h"

namespace sable::model_source {

namespace fs = std::filesystem;

namespace {

constexpr int kAttempts = 5;  // a dropped connection is retried (resuming) this many times

struct FileMeta {
  std::string etag;
  std::string location;
  std::string commit;
  int64_t size = -1;
};

bool is_sha256(const std::string& s) {
  if (s.size() != 64) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// An open file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

FileMeta head_file(HubHttp& http, const FetchContext& c, const std::string& file) {
  const HubTarget target{c.repo_id, c.revision, file};
  const std::string url = fmt::format("{}/{}/resolve/{}/{}", c.hub.endpoint, c.repo_id,
                                      url_quote(c.commit, ""), url_quote(file));
  HttpReply r;
  try {
    r = http.head(url);
  } catch (const NetworkError& e) {
    throw_network_error(target, e, c.hub);
  }
  check_http_status(target, r, c.hub);
  FileMeta m;
  m.commit = r.header("x-repo-commit");
  std::string etag = r.header("x-linked-etag");
  if (etag.empty()) etag = r.header("etag");
  m.etag = normalize_etag(etag);
  std::string size = r.header("x-linked-size");
  if (size.empty() && (r.status < 300 || r.status >= 400)) size = r.header("content-length");
  if (!size.empty()) {
    char* end = nullptr;
    m.size = std::strtoll(size.c_str(), &end, 10);
    if (end == size.c_str() || *end != '\0' || m.size < 0) {
      throw ResolveError(fmt::format("{}: file {}: the Hub sent a bad size \"{}\"", c.repo_id,
                                     file, size));
    }
  }
  m.location = r.header("location");
  if (m.location.empty()) m.location = url;
  if (m.location[0] == '/') m.location = url_origin(url) + m.location;
  if (m.etag.empty() || m.etag.find('/') != std::string::npos || m.etag == "." || m.etag == "..") {
    throw ResolveError(fmt::format("{}: file {}: the Hub sent no usable ETag (got \"{}\")",
                                   c.repo_id, file, etag));
  }
  return m;
}

// Free bytes where the blob goes; a clear error before starting when they do not suffice.
void check_free_space(const FetchContext& c, const std::string& file, const fs::path& dir,
                      int64_t needed) {
  struct statvfs st {};
  if (needed <= 0 || ::statvfs(dir.c_str(), &st) != 0) return;
  const auto free_bytes = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  if (free_bytes < needed) {
    throw ResolveError(fmt::format("{}: file {}: disk full: {} more needed, {} free in {}",
                                   c.repo_id, file, human_bytes(needed), human_bytes(free_bytes),
                                   dir.string()));
  }
}

// Downloads into `part` (appending to what is there) until the expected size or a final error.
void download_blob(HubHttp& http, const FetchContext& c, const std::string& file,
                   const FileMeta& m, const fs::path& part) {
  const HubTarget target{c.repo_id, c.revision, file};
  Fd out;
  out.fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out.fd < 0) {
    throw ResolveError(fmt::format("{}: file {}: cannot write {}: {}", c.repo_id, file,
                                   part.string(), std::strerror(errno)));
  }
  int64_t have = static_cast<int64_t>(fs::file_size(part));
  if (m.size >= 0 && have > m.size) {  // longer than the file: not ours to continue
    if (::ftruncate(out.fd, 0) != 0) throw std::system_error(errno, std::generic_category());
    have = 0;
  }
  check_free_space(c, file, part.parent_path(), m.size >= 0 ? m.size - have : 0);
  const int slot = c.progress.start(c.repo_id + "/" + file, m.size, have);
  for (int attempt = 1;; ++attempt) {
    if (m.size >= 0 && have == m.size) break;
    long status = 0;
    try {
      const int64_t offset = have;
      http.download(
          m.location, out.fd, offset,
          [&](long s) {
            status = s;
            if (s >= 400) return false;
            if (offset > 0 && s == 200) {  // the server ignored the Range: start over
              if (::ftruncate(out.fd, 0) != 0) throw std::system_error(errno, std::generic_category());
              have = 0;
              c.progress.rewind(slot, 0);
            }
            return true;
          },
          [&](int64_t n) {
            have += n;
            c.progress.advance(slot, n);
          },
          c.cancel);
      if (status == 416) {  // our partial file does not fit the server's: start over
        if (::ftruncate(out.fd, 0) != 0) throw std::system_error(errno, std::generic_category());
        have = 0;
        c.progress.rewind(slot, 0);
        if (attempt < kAttempts) continue;
      }
      HttpReply reply;
      reply.status = status;
      check_http_status(target, reply, c.hub);
      if (m.size < 0 || have == m.size) break;
      if (have > m.size) {
        throw ResolveError(fmt::format("{}: file {}: the server sent {} bytes, {} expected",
                                       c.repo_id, file, have, m.size));
      }
      // Short but "complete" (a proxy cut it): resume like a dropped connection.
    } catch (const NetworkError& e) {
      if (c.cancel.load()) {
        c.progress.finish(slot, false);
        throw ResolveError(fmt::format("{}: file {}: stopped (another file failed)", c.repo_id, file));
      }
      if (attempt >= kAttempts) {
        c.progress.finish(slot, false);
        throw_network_error(target, e, c.hub);
      }
    } catch (const std::system_error& e) {
      c.progress.finish(slot, false);
      const bool full = e.code().value() == ENOSPC || e.code().value() == EDQUOT;
      throw ResolveError(fmt::format(
          "{}: file {}: {} writing {}{}", c.repo_id, file, full ? "disk full" : e.what(),
          part.string(), full ? " (free some space and run again: the download resumes)" : ""));
    } catch (...) {
      c.progress.finish(slot, false);
      throw;
    }
    if (attempt >= kAttempts) {
      c.progress.finish(slot, false);
      throw ResolveError(fmt::format("{}: file {}: incomplete after {} attempts ({} of {} bytes)",
                                     c.repo_id, file, kAttempts, have, m.size));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempt));
  }
  if (::fsync(out.fd) != 0) {
    c.progress.finish(slot, false);
    throw ResolveError(fmt::format("{}: file {}: cannot flush {}: {}", c.repo_id, file,
                                   part.string(), std::strerror(errno)));
  }
  c.progress.finish(slot, true);
}

}  // namespace

std::string sha256_of_file(const fs::path& path) {
  Fd in;
  in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) throw std::system_error(errno, std::generic_category(), path.string());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(in.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      EVP_MD_CTX_free(ctx);
      throw std::system_error(errno, std::generic_category(), path.string());
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

void fetch_file(HubHttp& http, const FetchContext& c, const std::string& file) {
  const FileMeta m = head_file(http, c, file);
  if (!m.commit.empty() && m.commit != c.commit) {
    throw ResolveError(fmt::format("{}: file {}: asked for commit {}, the Hub answered for {}",
                                   c.repo_id, file, c.commit, m.commit));
  }
  const fs::path blob = blob_path(c.repo_dir, m.etag);
  const auto blob_ok = [&] {
    std::error_code ec;
    return fs::is_regular_file(blob, ec) &&
           (m.size < 0 || static_cast<int64_t>(fs::file_size(blob, ec)) == m.size);
  };
  if (!blob_ok()) {
    fs::create_directories(blob.parent_path());
    const fs::path lock_file = lock_path(c.hub.cache_dir, c.repo_id, m.etag);
    fs::create_directories(lock_file.parent_path());
    Fd lock;
    lock.fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock.fd < 0 || ::flock(lock.fd, LOCK_EX) != 0) {
      throw ResolveError(fmt::format("{}: file {}: cannot lock {}: {}", c.repo_id, file,
                                     lock_file.string(), std::strerror(errno)));
    }
    if (!blob_ok()) {  // another process may have finished it while we waited
      const fs::path part = blob.string() + ".incomplete";
      download_blob(http, c, file, m, part);
      const int64_t got = static_cast<int64_t>(fs::file_size(part));
      if (m.size >= 0 && got != m.size) {
        fs::remove(part);
        throw ResolveError(fmt::format("{}: file {}: size mismatch, {} bytes instead of {}; the "
                                       "partial blob was removed",
                                       c.repo_id, file, got, m.size));
      }
      if (is_sha256(m.etag)) {
        const std::string sum = sha256_of_file(part);
        if (sum != m.etag) {
          fs::remove(part);
          throw ResolveError(fmt::format("{}: file {}: checksum mismatch: sha256 {} but the Hub "
                                         "says {}; the bad blob was removed, run again to "
                                         "download it anew",
                                         c.repo_id, file, sum, m.etag));
        }
      }
      fs::rename(part, blob);
    }
  }
  link_into_snapshot(c.repo_dir, c.commit, file, m.etag);
}

}  // namespace sable::model_source
