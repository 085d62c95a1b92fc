// libFuzzer target for the GGUF header reader (core/gguf): arbitrary bytes are parsed as a GGUF
// file, the way `--model-path x.gguf` reads a file from anywhere. Invariants: no crash, hang or
// huge allocation; a header that is accepted describes tensors lying inside the input, with
// positive dims and a byte size that matches their type; each accepted tensor's first row
// dequantizes (arbitrary block bytes are fine for the dequantizers).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/gguf/ggml_types.h"
#include "core/gguf/gguf_file.h"

using namespace sable::gguf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto bytes = std::as_bytes(std::span(data, size));
  Header h;
  try {
    h = parse_header(bytes, "fuzz.gguf");
  } catch (const GgufError&) {
    return 0;
  }
  // A file without tensors may end before the padding of its (empty) data area.
  if ((!h.tensors.empty() && h.data_offset > size) || h.alignment == 0) std::abort();
  std::vector<float> row;
  for (const TensorInfo& t : h.tensors) {
    if (t.offset < h.data_offset || t.offset > size || t.nbytes > size - t.offset) std::abort();
    const TypeTraits* traits = type_traits(t.type);
    if (traits == nullptr) std::abort();
    int64_t n = 1;
    for (int64_t d : t.dims) {
      if (d <= 0) std::abort();
      n *= d;
    }
    if (static_cast<uint64_t>(n / traits->block_size) * traits->type_size != t.nbytes) std::abort();
    const int64_t cols = t.dims.empty() ? 1 : t.dims[0];
    if (!traits->dequantizable || cols > (1 << 20)) continue;
    row.resize(static_cast<size_t>(cols));
    dequantize_row(t.type, reinterpret_cast<const std::byte*>(data) + t.offset, row.data(), cols);
  }
  return 0;
}
