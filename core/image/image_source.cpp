// Resolving an image reference to its bytes (see image_source.h).
#include "core/image/image_source.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "core/image/base64.h"

namespace sable::image {

namespace {

bool starts_with_nocase(const std::string& s, const char* prefix) {
  size_t i = 0;
  for (; prefix[i] != '\0'; ++i) {
    if (i >= s.size() || std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string too_large(int64_t size, int64_t limit) {
  return fmt::format("image is too large: {} bytes (the limit is {} bytes)", size, limit);
}

std::string decode_base64_or_throw(std::string_view text, const ImageLimits& limits,
                                   const char* what) {
  if (static_cast<int64_t>(text.size()) / 4 * 3 > limits.max_bytes + 3)
    throw ImageError(ImageErrorKind::kTooLarge, too_large(static_cast<int64_t>(text.size()) / 4 * 3,
                                                          limits.max_bytes));
  auto bytes = base64_decode(text);
  if (!bytes) throw ImageError(ImageErrorKind::kInvalid, fmt::format("{} is not valid base64", what));
  if (bytes->empty()) throw ImageError(ImageErrorKind::kInvalid, fmt::format("{} is empty", what));
  // The estimate above refuses a huge text before decoding; the decoded size is the real figure
  // (the estimate lets up to 5 bytes over the limit through).
  if (static_cast<int64_t>(bytes->size()) > limits.max_bytes)
    throw ImageError(ImageErrorKind::kTooLarge,
                     too_large(static_cast<int64_t>(bytes->size()), limits.max_bytes));
  return std::move(*bytes);
}

std::string read_file(const std::string& path, const ImageLimits& limits) {
  if (!limits.allow_local_files)
    throw ImageError(ImageErrorKind::kInvalid,
                     "image paths on the server are not allowed; send a URL or base64 data");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw ImageError(ImageErrorKind::kInvalid, fmt::format("image file not found: '{}'", path));
  if (static_cast<int64_t>(size) > limits.max_bytes)
    throw ImageError(ImageErrorKind::kTooLarge, too_large(static_cast<int64_t>(size), limits.max_bytes));
  std::ifstream in(path, std::ios::binary);
  std::string bytes(size, '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw ImageError(ImageErrorKind::kInvalid, fmt::format("image file '{}' cannot be read", path));
  return bytes;
}

// A reference that is meant as a path (an image extension or a slash) but names no file gets the
// "not found" error rather than "invalid base64", which would puzzle whoever typed a path.
bool looks_like_path(const std::string& ref) {
  if (ref.find('/') != std::string::npos && ref.find('.') != std::string::npos) return true;
  const auto dot = ref.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = ref.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "webp" || ext == "gif" ||
         ext == "bmp";
}

}  // namespace

std::string describe_ref(const std::string& ref) {
  constexpr size_t kShown = 48;
  std::string s = ref.size() <= kShown ? ref : ref.substr(0, kShown) + "...";
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s;
}

std::string read_image_bytes(const std::string& ref, const ImageLimits& limits) {
  if (ref.empty()) throw ImageError(ImageErrorKind::kInvalid, "image reference is empty");
  if (starts_with_nocase(ref, "data:")) {
    const size_t comma = ref.find(',');
    if (comma == std::string::npos)
      throw ImageError(ImageErrorKind::kInvalid, "data: URL without a ',' before its data");
    const std::string header = ref.substr(5, comma - 5);
    if (header.size() < 7 || header.compare(header.size() - 7, 7, ";base64") != 0)
      throw ImageError(ImageErrorKind::kUnsupported,
                       fmt::format("data: URL '{}' is not base64 (';base64,' expected)",
                                   describe_ref(ref)));
    return decode_base64_or_throw(std::string_view(ref).substr(comma + 1), limits,
                                  "the data: URL's data");
  }
  if (starts_with_nocase(ref, "http://") || starts_with_nocase(ref, "https://"))
    return fetch_url(ref, limits);
  if (starts_with_nocase(ref, "file://")) return read_file(ref.substr(7), limits);
  std::error_code ec;
  if (ref.size() < 4096 && std::filesystem::is_regular_file(ref, ec)) return read_file(ref, limits);
  if (looks_like_path(ref) && !base64_decode(ref)) {
    if (!limits.allow_local_files)
      throw ImageError(ImageErrorKind::kInvalid,
                       "image paths on the server are not allowed; send a URL or base64 data");
    throw ImageError(ImageErrorKind::kInvalid,
                     fmt::format("image file not found: '{}'", describe_ref(ref)));
  }
  try {
    return decode_base64_or_throw(ref, limits, "image data");
  } catch (const ImageError& e) {
    if (e.kind() != ImageErrorKind::kInvalid) throw;
    throw ImageError(ImageErrorKind::kInvalid,
                     fmt::format("image '{}' is not a file path, an http(s) URL, a data: URL or "
                                 "base64 image data",
                                 describe_ref(ref)));
  }
}

}  // namespace sable::image
