// Loading: tokenizer.json -> pipeline components, tokenizer_config.json -> special token strings,
// add_bos/eos_token and chat template, generation_config.json -> extra EOS ids. Every error names
// the file and the component.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "core/tokenizer/byte_level.h"
#include "core/tokenizer/tokenizer_impl.h"
#include "core/tokenizer/unigram_model.h"
#include "core/tokenizer/wordpiece_model.h"

namespace sable::tokenizer {
namespace {

using nlohmann::json;

// A special-token entry of tokenizer_config.json: a string or an AddedToken object.
std::string token_string(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) {
    return j["content"].get<std::string>();
  }
  return "";
}

void parse_post_processor(const json& spec, const Tokenizer::Impl& impl,
                          std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (spec.is_null()) return;
  const std::string type = spec.at("type").get<std::string>();
  std::vector<int32_t> pre, post;
  if (type == "ByteLevel") {
    return;
  } else if (type == "TemplateProcessing") {
    bool seen_sequence = false;
    for (const auto& item : spec.at("single")) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item["SpecialToken"].at("id").get<std::string>();
        const json& st = spec.at("special_tokens");
        if (!st.contains(name)) {
          throw std::runtime_error("post_processor TemplateProcessing: special token '" + name +
                                   "' has no ids");
        }
        for (const auto& id : st[name].at("ids")) {
          (seen_sequence ? post : pre).push_back(id.get<int32_t>());
        }
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    pre.push_back(spec.at("cls").at(1).get<int32_t>());
    post.push_back(spec.at("sep").at(1).get<int32_t>());
  } else if (type == "Sequence") {
    for (const auto& sub : spec.at("processors")) parse_post_processor(sub, impl, prefix, suffix);
    return;
  } else {
    throw std::runtime_error("post_processor type '" + type + "' is not supported");
  }
  prefix.insert(prefix.begin(), pre.begin(), pre.end());
  suffix.insert(suffix.end(), post.begin(), post.end());
}

// The pair template of a post-processor (TemplateProcessing "pair", or the fixed Roberta/Bert
// ones); the first processor of a Sequence that has one wins.
std::vector<Tokenizer::Impl::PairPiece> parse_pair_template(const json& spec) {
  using Piece = Tokenizer::Impl::PairPiece;
  std::vector<Piece> out;
  if (!spec.is_object()) return out;
  const std::string type = spec.value("type", "");
  auto special = [](int32_t id, int32_t type_id) { return Piece{-1, {id}, type_id}; };
  if (type == "RobertaProcessing") {
    const int32_t cls = spec.at("cls").at(1).get<int32_t>(), sep = spec.at("sep").at(1).get<int32_t>();
    return {special(cls, 0), Piece{0, {}, 0}, special(sep, 0), special(sep, 0), Piece{1, {}, 0},
            special(sep, 0)};
  }
  if (type == "BertProcessing") {
    const int32_t cls = spec.at("cls").at(1).get<int32_t>(), sep = spec.at("sep").at(1).get<int32_t>();
    return {special(cls, 0), Piece{0, {}, 0}, special(sep, 0), Piece{1, {}, 1}, special(sep, 1)};
  }
  if (type == "Sequence") {
    for (const auto& sub : spec.at("processors")) {
      out = parse_pair_template(sub);
      if (!out.empty()) return out;
    }
    return out;
  }
  if (type != "TemplateProcessing" || !spec.contains("pair")) return out;
  for (const auto& item : spec.at("pair")) {
    if (item.contains("Sequence")) {
      const json& seq = item["Sequence"];
      out.push_back(Piece{seq.at("id").get<std::string>() == "B" ? 1 : 0, {},
                          seq.value("type_id", 0)});
    } else if (item.contains("SpecialToken")) {
      const json& tok = item["SpecialToken"];
      const std::string name = tok.at("id").get<std::string>();
      const json& st = spec.at("special_tokens");
      if (!st.contains(name))
        throw std::runtime_error("post_processor TemplateProcessing: special token '" + name +
                                 "' has no ids");
      out.push_back(Piece{-1, st[name].at("ids").get<std::vector<int32_t>>(),
                          tok.value("type_id", 0)});
    }
  }
  return out;
}

// eos_token_id of a generation_config.json / config.json object: an id or a list of ids, each
// appended once. Throws (json type_error) for ids that are not integers.
void append_eos_ids(const json& config, std::vector<int32_t>& out) {
  if (!config.is_object() || !config.contains("eos_token_id")) return;
  const json& e = config["eos_token_id"];
  std::vector<int32_t> ids;
  if (e.is_array()) {
    for (const auto& x : e) ids.push_back(x.get<int32_t>());
  } else if (!e.is_null()) {
    ids.push_back(e.get<int32_t>());
  }
  for (int32_t id : ids) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  }
}

json parse(std::string_view text, const char* file) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string(file) + ": malformed JSON: " + e.what());
  }
}

// transformers 5 builds Llama tokenizers from their own pipeline definition rather than the legacy
// SentencePiece emulation stored in older tokenizer.json files (Prepend "▁" + Replace " " -> "▁",
// no pre-tokenizer): no normalizer and a Metaspace pre-tokenizer (prepend_scheme "first", no
// split). The golden vectors are transformers 5's output, so mirror it for those classes.
bool is_legacy_llama(const json& j, const std::string& tokenizer_class) {
  if (tokenizer_class.rfind("Llama", 0) != 0) return false;
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) return false;
  const json n = j.value("normalizer", json());
  if (!n.is_object() || n.value("type", "") != "Sequence") return false;
  const json& items = n.at("normalizers");
  return items.size() == 2 && items[0].value("type", "") == "Prepend" &&
         items[0].value("prepend", "") == "\u2581" && items[1].value("type", "") == "Replace" &&
         items[1].value("content", "") == "\u2581";
}

void build_pipeline(const json& j, const std::string& tokenizer_class, Tokenizer::Impl& impl) {
  if (!j.is_object() || !j.contains("model")) {
    throw std::runtime_error("no \"model\" object");
  }
  bool byte_level = false;
  if (is_legacy_llama(j, tokenizer_class)) {
    impl.pre_tokenizer = make_pre_tokenizer(
        json{{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"},
             {"split", false}},
        byte_level);
  } else {
    impl.normalizer = make_normalizer(j.value("normalizer", json()));
    impl.pre_tokenizer = make_pre_tokenizer(j.value("pre_tokenizer", json()), byte_level);
  }
  const std::string model_type = j.at("model").value("type", std::string("BPE"));
  if (model_type == "WordPiece") {
    impl.model = std::make_unique<WordPieceModel>(j.at("model"));
  } else if (model_type == "Unigram") {
    impl.model = std::make_unique<UnigramModel>(j.at("model"));
  } else {
    impl.model = std::make_unique<BpeModel>(j.at("model"), byte_level);
  }
  impl.decoder = make_decoder(j.value("decoder", json()), impl.pure_byte_level_decoder);

  // Added tokens.
  std::vector<AddedToken> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      AddedToken t;
      t.id = a.at("id").get<int32_t>();
      t.content = a.at("content").get<std::string>();
      t.single_word = a.value("single_word", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.normalized = a.value("normalized", false);
      t.special = a.value("special", false);
      if (t.id < 0) throw std::runtime_error("added_tokens: negative id for '" + t.content + "'");
      impl.added.push_back(t);
      impl.added_to_id[t.content] = t.id;
      if (t.normalized && impl.normalizer) {
        std::string p = t.content;
        impl.normalizer->apply(p);
        norm.push_back(t);
        norm_pat.push_back(std::move(p));
      } else {
        raw.push_back(t);
        raw_pat.push_back(t.content);
      }
    }
  }
  impl.raw_matcher = AddedTokenMatcher(std::move(raw), std::move(raw_pat));
  impl.normalized_matcher = AddedTokenMatcher(std::move(norm), std::move(norm_pat));

  // Per-id tables.
  const auto& model_tokens = impl.model->id_to_token();
  size_t n = model_tokens.size();
  for (const auto& a : impl.added) n = std::max(n, static_cast<size_t>(a.id) + 1);
  impl.tokens.assign(n, "");
  impl.special.assign(n, 0);
  std::copy(model_tokens.begin(), model_tokens.end(), impl.tokens.begin());
  for (const auto& a : impl.added) {
    impl.tokens[a.id] = a.content;
    impl.special[a.id] = a.special ? 1 : 0;
  }
  impl.bytes.resize(n);
  for (size_t id = 0; id < n; ++id) {
    std::string b = impl.tokens[id];
    if (impl.decoder) impl.decoder->token_bytes(b);
    impl.bytes[id] = std::move(b);
  }
  parse_post_processor(j.value("post_processor", json()), impl, impl.prefix, impl.suffix);
  impl.pair_template = parse_pair_template(j.value("post_processor", json()));
}

}  // namespace

std::unique_ptr<Tokenizer::Impl> build_impl(std::string_view tokenizer_json,
                                             std::string_view config_json,
                                             std::string_view generation_json) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  const json j = parse(tokenizer_json, "tokenizer.json");
  const json c = config_json.empty() ? json::object() : parse(config_json, "tokenizer_config.json");
  try {
    std::string cls;
    if (c.is_object() && c.contains("tokenizer_class") && c["tokenizer_class"].is_string()) {
      cls = c["tokenizer_class"].get<std::string>();
    }
    build_pipeline(j, cls, *impl);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("tokenizer.json: ") + e.what());
  }

  auto id_of = [&](const std::string& tok) -> std::optional<int32_t> {
    if (tok.empty()) return std::nullopt;
    if (auto it = impl->added_to_id.find(tok); it != impl->added_to_id.end()) return it->second;
    const auto& m = impl->model->token_to_id();
    if (auto it = m.find(tok); it != m.end()) return it->second;
    return std::nullopt;
  };

  if (!config_json.empty()) {
    try {
      impl->bos_token = token_string(c.value("bos_token", json()));
      impl->eos_token = token_string(c.value("eos_token", json()));
      impl->pad_token = token_string(c.value("pad_token", json()));
      impl->bos_id = id_of(impl->bos_token);
      impl->eos_id = id_of(impl->eos_token);
      impl->pad_id = id_of(impl->pad_token);
      if (c.contains("chat_template")) {
        const json& t = c["chat_template"];
        if (t.is_string()) {
          impl->chat_template = t.get<std::string>();
        } else if (t.is_array()) {
          for (const auto& named : t) {
            if (named.value("name", std::string()) == "default") {
              impl->chat_template = named.at("template").get<std::string>();
            }
          }
        }
      }
      // An explicit add_bos_token / add_eos_token overrides what the post-processor does (as
      // transformers' Llama/Gemma tokenizers rebuild their post-processor from these flags).
      auto enforce = [&](const char* key, std::optional<int32_t> id, std::vector<int32_t>& v,
                         bool front) {
        if (!c.contains(key) || !c[key].is_boolean() || !id) return;
        bool want = c[key].get<bool>();
        bool has = !v.empty() && (front ? v.front() : v.back()) == *id;
        if (want && !has) v.insert(front ? v.begin() : v.end(), *id);
        if (!want && has) v.erase(front ? v.begin() : v.end() - 1);
      };
      enforce("add_bos_token", impl->bos_id, impl->prefix, true);
      enforce("add_eos_token", impl->eos_id, impl->suffix, false);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("tokenizer_config.json: ") + e.what());
    }
  }
  if (!generation_json.empty()) {
    const json g = parse(generation_json, "generation_config.json");
    try {
      append_eos_ids(g, impl->generation_eos);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("generation_config.json: ") + e.what());
    }
  }
  return impl;
}

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(p.string() + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& dir) {
  const auto tj = dir / "tokenizer.json";
  if (!std::filesystem::exists(tj)) {
    throw std::runtime_error(tj.string() + ": not found (only tokenizer.json models are supported)");
  }
  auto opt = [&](const char* name) {
    auto p = dir / name;
    return std::filesystem::exists(p) ? read_file(p) : std::string();
  };
  std::unique_ptr<Tokenizer> t;
  try {
    t = from_json(read_file(tj), opt("tokenizer_config.json"), opt("generation_config.json"));
  } catch (const std::exception& e) {
    throw std::runtime_error(dir.string() + "/" + e.what());
  }
  if (t->impl_->chat_template.empty()) t->impl_->chat_template = opt("chat_template.jinja");
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(std::string_view tokenizer_json,
                                                std::string_view config_json,
                                                std::string_view generation_json) {
  return std::unique_ptr<Tokenizer>(
      new Tokenizer(build_impl(tokenizer_json, config_json, generation_json)));
}

std::unique_ptr<Tokenizer> Tokenizer::ids_only(const std::filesystem::path& model_dir) {
  auto read_if = [&](const char* name) {
    const auto p = model_dir / name;
    return std::filesystem::exists(p) ? read_file(p) : std::string();
  };
  // An empty BPE model: nothing to merge, no token strings.
  constexpr std::string_view kEmpty = R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})";
  std::unique_ptr<Tokenizer> t = from_json(kEmpty, {}, read_if("generation_config.json"));
  // config.json's eos_token_id has the same form as generation_config.json's.
  if (const std::string config = read_if("config.json"); !config.empty()) {
    try {
      append_eos_ids(parse(config, "config.json"), t->impl_->generation_eos);
    } catch (const json::exception& e) {
      throw std::runtime_error(std::string("config.json: eos_token_id: ") + e.what());
    }
  }
  return t;
}

}  // namespace sable::tokenizer
