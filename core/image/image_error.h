// The one error type of image input: every way an image a client sent can be unusable (not an
// image reference at all, a URL that cannot be fetched, too many bytes or pixels, a format Sable
// does not decode, corrupt data). It derives from std::invalid_argument, which the HTTP layer
// answers with 400; the message names the problem, and kind() lets callers and tests tell them
// apart without parsing text.
#pragma once

#include <stdexcept>
#include <string>

namespace sable::image {

enum class ImageErrorKind {
  kInvalid,      // not a path, URL, data: URL or base64 string; a file that does not exist
  kUnreachable,  // an http(s) URL that failed (DNS, connection, timeout, non-200 status)
  kTooLarge,     // over the byte limit (encoded) or the pixel limit (decoded)
  kUnsupported,  // a real image in a format or variant Sable does not decode (GIF, CMYK JPEG, ...)
  kCorrupt       // data that claims a supported format but does not decode
};

class ImageError : public std::invalid_argument {
 public:
  ImageError(ImageErrorKind kind, const std::string& message)
      : std::invalid_argument(message), kind_(kind) {}
  ImageErrorKind kind() const { return kind_; }

 private:
  ImageErrorKind kind_;
};

// What every image-reading step may use at most. Bounded so that one request cannot make the
// server allocate without limit: the encoded bytes and the decoded pixels are both capped.
struct ImageLimits {
  static constexpr int64_t kDefaultMaxBytes = 32ll << 20;          // 32 MiB encoded
  static constexpr int64_t kDefaultMaxPixels = 32ll * 1024 * 1024;  // ~96 MiB as RGB8
  int64_t max_bytes = kDefaultMaxBytes;
  int64_t max_pixels = kDefaultMaxPixels;
  long fetch_timeout_s = 15;        // the whole http(s) transfer, connection included
  bool allow_local_files = true;    // a path (or file:// URL) is read from the server's disk
};

}  // namespace sable::image
