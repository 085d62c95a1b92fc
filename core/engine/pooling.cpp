// Pooling selection for embedding engines (see pooling.h).
#include "core/engine/pooling.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

namespace sable::engine {

namespace {

using nlohmann::json;

std::optional<json> read_json(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", path.string(), e.what()));
  }
}

struct SentenceTransformers {
  std::optional<PoolingKind> kind;
  bool normalize = false;
  std::string source;
};

// The pooling of a sentence-transformers checkpoint, or nullopt when it has no modules.json.
std::optional<SentenceTransformers> read_sentence_transformers(const std::filesystem::path& dir) {
  const std::filesystem::path modules_path = dir / "modules.json";
  const std::optional<json> modules = read_json(modules_path);
  if (!modules) return std::nullopt;
  if (!modules->is_array())
    throw std::runtime_error(modules_path.string() + ": expected a list of modules");
  SentenceTransformers st;
  st.source = modules_path.string();
  for (const json& m : *modules) {
    const std::string type = m.is_object() ? m.value("type", "") : "";
    const std::string path = m.is_object() ? m.value("path", "") : "";
    if (type == "sentence_transformers.models.Transformer") continue;
    if (type == "sentence_transformers.models.Normalize") {
      st.normalize = true;
      continue;
    }
    if (type != "sentence_transformers.models.Pooling")
      throw std::runtime_error(fmt::format(
          "{}: module '{}' is not supported (Sable runs Transformer, Pooling and Normalize)",
          modules_path.string(), type));
    const std::filesystem::path config_path = dir / path / "config.json";
    const std::optional<json> cfg = read_json(config_path);
    if (!cfg || !cfg->is_object())
      throw std::runtime_error(config_path.string() + ": the Pooling module's config is missing");
    st.source = config_path.string();
    int modes = 0;
    for (const auto& [key, value] : cfg->items()) {
      if (key.rfind("pooling_mode_", 0) != 0 || !value.is_boolean() || !value.get<bool>()) continue;
      ++modes;
      if (key == "pooling_mode_cls_token") {
        st.kind = PoolingKind::kCls;
      } else if (key == "pooling_mode_mean_tokens") {
        st.kind = PoolingKind::kMean;
      } else if (key == "pooling_mode_lasttoken") {
        st.kind = PoolingKind::kLast;
      } else {
        throw std::runtime_error(fmt::format(
            "{}: {} is not supported (cls_token, mean_tokens and lasttoken are)",
            config_path.string(), key));
      }
    }
    if (modes != 1)
      throw std::runtime_error(fmt::format(
          "{}: expected exactly one pooling_mode_* set to true, found {}", config_path.string(),
          modes));
  }
  return st;
}

}  // namespace

const char* pooling_name(PoolingKind kind) {
  switch (kind) {
    case PoolingKind::kCls: return "cls";
    case PoolingKind::kMean: return "mean";
    default: return "last";
  }
}

Pooling resolve_pooling(const std::filesystem::path& model_dir, const std::string& pooling,
                        const std::string& normalize, bool encoder) {
  Pooling p;
  p.kind = encoder ? PoolingKind::kCls : PoolingKind::kLast;
  p.normalize = true;
  p.source = encoder ? "the encoder default (SGLang: CLS, normalised)"
                     : "the decoder default (SGLang: last token, normalised)";
  std::error_code ec;
  if (std::filesystem::is_directory(model_dir, ec)) {
    if (const auto st = read_sentence_transformers(model_dir)) {
      if (st->kind) p.kind = *st->kind;
      p.normalize = st->normalize;
      p.source = st->source;
    }
  }
  if (pooling == "cls") p.kind = PoolingKind::kCls;
  else if (pooling == "mean") p.kind = PoolingKind::kMean;
  else if (pooling == "last") p.kind = PoolingKind::kLast;
  else if (pooling != "auto")
    throw std::runtime_error("pooling: expected auto, cls, mean or last, got '" + pooling + "'");
  if (normalize == "true") p.normalize = true;
  else if (normalize == "false") p.normalize = false;
  else if (normalize != "auto")
    throw std::runtime_error("pooling_normalize: expected auto, true or false, got '" + normalize +
                             "'");
  if (pooling != "auto" || normalize != "auto") p.source += " overridden by the pooling options";
  return p;
}

}  // namespace sable::engine
