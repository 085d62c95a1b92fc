// HfConfig: JSON document access and the rope merge (see hf_config.h).
#include "core/hf_config/hf_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace sable::hf {

struct HfConfig::Doc {
  nlohmann::json json;
};

namespace {

using Json = nlohmann::json;

// The value at a dotted key, or nullptr when absent (or when an intermediate is not an object).
const Json* lookup(const Json& root, std::string_view key) {
  const Json* cur = &root;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    const std::string part(key.substr(start, dot == std::string_view::npos ? key.npos : dot - start));
    if (!cur->is_object()) return nullptr;
    const auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return cur->is_null() ? nullptr : cur;
}

}  // namespace

HfConfig HfConfig::load(const std::filesystem::path& config_json) {
  std::ifstream in(config_json, std::ios::binary);
  if (!in) throw ConfigError("cannot read model config '" + config_json.string() + "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), config_json.string());
}

HfConfig HfConfig::parse(std::string_view json_text, std::string source_name) {
  auto doc = std::make_shared<Doc>();
  try {
    doc->json = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    throw ConfigError(source_name + ": malformed JSON: " + e.what());
  }
  if (!doc->json.is_object()) throw ConfigError(source_name + ": top level is not a JSON object");
  return HfConfig(std::move(doc), std::move(source_name));
}

bool HfConfig::has(std::string_view key) const { return lookup(doc_->json, key) != nullptr; }

std::optional<int64_t> HfConfig::get_int(std::string_view key) const {
  const Json* v = lookup(doc_->json, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      throw ConfigError(source_ + ": '" + std::string(key) + "' is out of range");
    }
    return v->get<int64_t>();
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  throw ConfigError(source_ + ": '" + std::string(key) + "' must be an integer, got " + v->dump());
}

std::optional<double> HfConfig::get_float(std::string_view key) const {
  const Json* v = lookup(doc_->json, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) {
    throw ConfigError(source_ + ": '" + std::string(key) + "' must be a number, got " + v->dump());
  }
  return v->get<double>();
}

std::optional<bool> HfConfig::get_bool(std::string_view key) const {
  const Json* v = lookup(doc_->json, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) {
    throw ConfigError(source_ + ": '" + std::string(key) + "' must be true or false, got " +
                      v->dump());
  }
  return v->get<bool>();
}

std::optional<std::string> HfConfig::get_string(std::string_view key) const {
  const Json* v = lookup(doc_->json, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    throw ConfigError(source_ + ": '" + std::string(key) + "' must be a string, got " + v->dump());
  }
  return v->get<std::string>();
}

std::optional<std::vector<int64_t>> HfConfig::get_int_list(std::string_view key) const {
  const Json* v = lookup(doc_->json, key);
  if (v == nullptr) return std::nullopt;
  std::vector<int64_t> out;
  if (v->is_array()) {
    for (const auto& e : *v) {
      if (!e.is_number_integer()) break;
      out.push_back(e.get<int64_t>());
    }
    if (out.size() == v->size()) return out;
  }
  throw ConfigError(source_ + ": '" + std::string(key) + "' must be a list of integers, got " +
                    v->dump());
}

std::optional<std::vector<double>> HfConfig::get_float_list(std::string_view key) const {
  const Json* v = lookup(doc_->json, key);
  if (v == nullptr) return std::nullopt;
  std::vector<double> out;
  if (v->is_array()) {
    for (const auto& e : *v) {
      if (!e.is_number()) break;
      out.push_back(e.get<double>());
    }
    if (out.size() == v->size()) return out;
  }
  throw ConfigError(source_ + ": '" + std::string(key) + "' must be a list of numbers, got " +
                    v->dump());
}

std::vector<std::string> HfConfig::architectures() const {
  const Json* v = lookup(doc_->json, "architectures");
  if (v == nullptr) return {};
  std::vector<std::string> out;
  if (v->is_array()) {
    for (const auto& e : *v) {
      if (!e.is_string()) break;
      out.push_back(e.get<std::string>());
    }
    if (out.size() == v->size()) return out;
  }
  throw ConfigError(source_ + ": 'architectures' must be a list of strings, got " + v->dump());
}

std::string HfConfig::model_type() const { return get_string("model_type").value_or(""); }

int64_t HfConfig::required_int(std::string_view key) const {
  const auto v = get_int(key);
  if (!v) throw ConfigError(source_ + ": required field '" + std::string(key) + "' is missing");
  return *v;
}

int64_t HfConfig::hidden_size() const { return required_int("hidden_size"); }
int64_t HfConfig::num_hidden_layers() const { return required_int("num_hidden_layers"); }
int64_t HfConfig::num_attention_heads() const { return required_int("num_attention_heads"); }
int64_t HfConfig::num_key_value_heads() const {
  return get_int("num_key_value_heads").value_or(num_attention_heads());
}
int64_t HfConfig::head_dim() const {
  if (const auto v = get_int("head_dim")) return *v;
  const int64_t heads = num_attention_heads();
  if (heads <= 0) throw ConfigError(source_ + ": 'num_attention_heads' must be positive");
  return hidden_size() / heads;
}
int64_t HfConfig::vocab_size() const { return required_int("vocab_size"); }
int64_t HfConfig::intermediate_size() const { return required_int("intermediate_size"); }
double HfConfig::rms_norm_eps() const { return get_float("rms_norm_eps").value_or(1e-6); }
int64_t HfConfig::max_position_embeddings() const {
  return get_int("max_position_embeddings").value_or(2048);
}
bool HfConfig::tie_word_embeddings() const {
  return get_bool("tie_word_embeddings").value_or(false);
}
bool HfConfig::attention_bias() const { return get_bool("attention_bias").value_or(false); }
std::string HfConfig::dtype() const {
  if (auto v = get_string("dtype")) return *v;
  return get_string("torch_dtype").value_or("");
}

RopeParams HfConfig::rope() const {
  RopeParams r;
  r.max_position_embeddings = max_position_embeddings();
  // Which object describes the scaling: rope_parameters (transformers 5) or rope_scaling.
  std::string obj;
  for (const char* name : {"rope_parameters", "rope_scaling"}) {
    const Json* v = lookup(doc_->json, name);
    if (v == nullptr) continue;
    if (!v->is_object()) {
      throw ConfigError(source_ + ": '" + name + "' must be an object, got " + v->dump());
    }
    obj = name;
    break;
  }
  const auto key = [&](const char* field) { return obj + "." + field; };
  const auto from_obj_or_top = [&](const char* field) {
    std::optional<double> v;
    if (!obj.empty()) v = get_float(key(field));
    return v ? v : get_float(field);
  };

  if (!obj.empty()) {
    const Json& o = *lookup(doc_->json, obj);
    const bool has_type = o.contains("rope_type") || o.contains("type") || o.contains("rope_theta");
    if (!has_type && !o.empty() &&
        std::all_of(o.begin(), o.end(), [](const Json& e) { return e.is_object(); })) {
      throw ConfigError(source_ + ": per-layer-type '" + obj + "' is not supported");
    }
  }
  r.theta = from_obj_or_top("rope_theta").value_or(10000.0);
  r.partial_rotary_factor = from_obj_or_top("partial_rotary_factor").value_or(1.0);
  if (!(r.partial_rotary_factor > 0.0 && r.partial_rotary_factor <= 1.0)) {
    throw ConfigError(source_ + ": 'partial_rotary_factor' must be in (0, 1]");
  }
  std::string type_key = obj.empty() ? "" : key("rope_type");
  std::optional<std::string> type;
  if (!obj.empty()) {
    type = get_string(type_key);
    if (!type) {
      type_key = key("type");
      type = get_string(type_key);
    }
  }
  r.type = type.value_or("default");
  if (r.type == "su") r.type = "longrope";
  // Qwen2-VL's M-RoPE ("mrope", with mrope_section) uses the default frequencies; the model
  // applies the sections.
  if (r.type == "mrope") r.type = "default";
  if (r.type != "default" && r.type != "linear" && r.type != "dynamic" && r.type != "llama3" &&
      r.type != "yarn" && r.type != "longrope") {
    throw ConfigError(source_ + ": '" + type_key + "' = '" + r.type +
                      "' is not a supported rope type (default, linear, dynamic, llama3, yarn, "
                      "longrope)");
  }
  if (r.type == "default") return r;

  const auto need = [&](const char* field) {
    const auto v = get_float(key(field));
    if (!v) {
      throw ConfigError(source_ + ": rope type '" + r.type + "' needs '" + key(field) + "'");
    }
    return *v;
  };
  // Phi-3 style configs keep the pretraining context at the top level; it takes priority.
  if (const auto top = get_int("original_max_position_embeddings")) {
    r.original_max_position_embeddings = *top;
  } else if (const auto in_obj = get_int(key("original_max_position_embeddings"))) {
    r.original_max_position_embeddings = *in_obj;
  }
  const auto derived_factor = [&]() -> std::optional<double> {
    if (r.original_max_position_embeddings <= 0) return std::nullopt;
    return static_cast<double>(r.max_position_embeddings) /
           static_cast<double>(r.original_max_position_embeddings);
  };

  if (r.type == "linear" || r.type == "dynamic") {
    r.factor = need("factor");
  } else if (r.type == "llama3") {
    r.factor = need("factor");
    r.low_freq_factor = need("low_freq_factor");
    r.high_freq_factor = need("high_freq_factor");
    if (r.original_max_position_embeddings <= 0) {
      throw ConfigError(source_ + ": rope type 'llama3' needs '" +
                        key("original_max_position_embeddings") + "'");
    }
    if (r.high_freq_factor == r.low_freq_factor) {
      throw ConfigError(source_ + ": llama3 rope needs high_freq_factor != low_freq_factor");
    }
  } else if (r.type == "yarn") {
    const auto f = get_float(key("factor"));
    if (!f && !derived_factor()) {
      throw ConfigError(source_ + ": rope type 'yarn' needs '" + key("factor") + "'");
    }
    r.factor = f ? *f : *derived_factor();
    r.attention_factor = get_float(key("attention_factor"));
    r.beta_fast = get_float(key("beta_fast")).value_or(32.0);
    r.beta_slow = get_float(key("beta_slow")).value_or(1.0);
    r.mscale = get_float(key("mscale"));
    r.mscale_all_dim = get_float(key("mscale_all_dim"));
    r.truncate = get_bool(key("truncate")).value_or(true);
  } else {  // longrope
    const auto s = get_float_list(key("short_factor"));
    const auto l = get_float_list(key("long_factor"));
    if (!s || !l) {
      throw ConfigError(source_ + ": rope type 'longrope' needs '" + key("short_factor") +
                        "' and '" + key("long_factor") + "'");
    }
    r.short_factor = *s;
    r.long_factor = *l;
    const auto f = get_float(key("factor"));
    r.factor = f ? *f : derived_factor().value_or(1.0);
    r.attention_factor = get_float(key("attention_factor"));
  }
  if (!(r.factor > 0.0)) throw ConfigError(source_ + ": '" + key("factor") + "' must be positive");
  return r;
}

int32_t HfConfig::rotary_dim() const { return rope().rotary_dim(head_dim()); }

std::string HfConfig::dump() const { return doc_->json.dump(2); }

}  // namespace sable::hf
