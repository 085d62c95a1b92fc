// A copy of a golden checkpoint whose vocabulary is cut to its first `vocab` rows (the embedding,
// the LM head and config.json's vocab_size), for the tensor-parallel suites on the CPU and CUDA:
// a vocabulary the ranks do not divide exercises the padded slices. The cut changes no other
// logit, so the reference's first `vocab` logits columns stay the reference.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/weights/safetensors.h"
#include "core/weights/safetensors_writer.h"

namespace sable::test_support {

// Writes the cut copy of the checkpoint folder `src` (one model.safetensors) into `dst` and
// returns `dst`.
inline std::string cut_vocab_copy(const std::string& src, const std::string& dst, int64_t vocab) {
  namespace fs = std::filesystem;
  fs::create_directories(dst);
  auto in = weights::SafetensorsFile::open(fs::path(src) / "model.safetensors");
  weights::SafetensorsWriter out;
  for (const auto& t : in->tensors()) {
    auto bytes = in->bytes(t);
    std::vector<int64_t> shape = t.shape;
    if (t.name == "model.embed_tokens.weight" || t.name == "lm_head.weight") {
      const auto row = bytes.size() / static_cast<size_t>(shape[0]);
      bytes = bytes.first(row * static_cast<size_t>(vocab));
      shape[0] = vocab;
    }
    out.add(t.name, t.dtype, shape, std::vector<std::byte>(bytes.begin(), bytes.end()));
  }
  out.write(fs::path(dst) / "model.safetensors");
  std::ifstream cfg_in(fs::path(src) / "config.json");
  auto cfg = nlohmann::json::parse(cfg_in);
  cfg["vocab_size"] = vocab;
  std::ofstream(fs::path(dst) / "config.json") << cfg.dump(2);
  return dst;
}

}  // namespace sable::test_support
