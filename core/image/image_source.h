// Where an image's bytes come from: the forms SGLang's `image_data` and OpenAI's `image_url`
// accept, resolved to the encoded file bytes (PNG/JPEG/WebP, decoded by image_decode.h):
//   data:[<media type>];base64,<data>   a data: URL (base64 only, as browsers and SDKs send them)
//   http://... / https://...            fetched with libcurl (the Hub downloader's library), with
//                                       the time and size limits of ImageLimits
//   file:///path or a local path        read from the server's disk (when allow_local_files)
//   anything else                       raw base64 of the file
// Errors are ImageError naming the problem (see image_error.h). Thread-safe: no shared state
// besides libcurl's global init, done once.
#pragma once

#include <string>

#include "core/image/image_error.h"

namespace sable::image {

// The encoded bytes of the image `ref` refers to; throws ImageError.
std::string read_image_bytes(const std::string& ref, const ImageLimits& limits);

// GET `url` following redirects, failing with kUnreachable on a transport error, a timeout or a
// status other than 200, and with kTooLarge as soon as more than limits.max_bytes arrive.
std::string fetch_url(const std::string& url, const ImageLimits& limits);

// A short, printable excerpt of a client's reference for error messages (long base64 is cut).
std::string describe_ref(const std::string& ref);

}  // namespace sable::image
