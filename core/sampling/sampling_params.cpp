// Parsing and validation of SamplingParams (see sampling_params.h). Messages follow SGLang's
// SamplingParams.verify() wording so clients see the same text from both servers.
#include "core/sampling/sampling_params.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace sable::sampling {
namespace {

using nlohmann::json;

// Python's str(float): shortest round-trip form with a ".0" on integral values.
std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

[[noreturn]] void bad_type(const std::string& field, const char* expected, const json& v) {
  throw ValidationError(field, fmt::format("sampling_params.{} must be {}, got {}", field, expected,
                                           v.dump()));
}

double get_number(const std::string& field, const json& v) {
  if (!v.is_number()) bad_type(field, "a number", v);
  return v.get<double>();
}

int64_t get_int(const std::string& field, const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // Accept integral floats (2.0) as JSON clients often send them.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  bad_type(field, "an integer", v);
}

int32_t get_int32(const std::string& field, const json& v) {
  const int64_t x = get_int(field, v);
  if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) {
    throw ValidationError(field, fmt::format("sampling_params.{} is out of range, got {}", field, x));
  }
  return static_cast<int32_t>(x);
}

bool get_bool(const std::string& field, const json& v) {
  if (!v.is_boolean()) bad_type(field, "a boolean", v);
  return v.get<bool>();
}

std::string get_string(const std::string& field, const json& v) {
  if (!v.is_string()) bad_type(field, "a string", v);
  return v.get<std::string>();
}

// str or [str]
std::vector<std::string> get_strings(const std::string& field, const json& v) {
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) bad_type(field, "a string or a list of strings", v);
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) bad_type(field, "a string or a list of strings", v);
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

SamplingParams SamplingParams::from_json(const json& j) {
  SamplingParams p;
  if (j.is_null()) return p;
  if (!j.is_object()) {
    throw ValidationError("sampling_params", "sampling_params must be an object, got " + j.dump());
  }
  for (const auto& [key, v] : j.items()) {
    if (v.is_null()) continue;  // null = default
    if (key == "max_new_tokens") {
      p.max_new_tokens = get_int32(key, v);
    } else if (key == "min_new_tokens") {
      p.min_new_tokens = get_int32(key, v);
    } else if (key == "temperature") {
      p.temperature = get_number(key, v);
    } else if (key == "top_p") {
      p.top_p = get_number(key, v);
    } else if (key == "top_k") {
      p.top_k = get_int32(key, v);
    } else if (key == "min_p") {
      p.min_p = get_number(key, v);
    } else if (key == "frequency_penalty") {
      p.frequency_penalty = get_number(key, v);
    } else if (key == "presence_penalty") {
      p.presence_penalty = get_number(key, v);
    } else if (key == "repetition_penalty") {
      p.repetition_penalty = get_number(key, v);
    } else if (key == "logit_bias") {
      if (!v.is_object()) bad_type(key, "an object {\"token_id\": bias}", v);
      for (const auto& [id_text, bias] : v.items()) {
        int64_t id = 0;
        size_t used = 0;
        try {
          id = std::stoll(id_text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != id_text.size()) {
          throw ValidationError(key, "logit_bias keys must be token ids, got '" + id_text + "'");
        }
        if (id < std::numeric_limits<int32_t>::min() || id > std::numeric_limits<int32_t>::max()) {
          throw ValidationError(key, fmt::format("logit_bias must has keys in [0, V-1], got {}.", id));
        }
        p.logit_bias.emplace_back(static_cast<int32_t>(id),
                                  static_cast<float>(get_number("logit_bias", bias)));
      }
    } else if (key == "sampling_seed" || key == "seed") {
      const int64_t s = get_int(key, v);
      p.sampling_seed = static_cast<uint64_t>(s);
    } else if (key == "stop") {
      p.stop = get_strings(key, v);
    } else if (key == "stop_regex") {
      p.stop_regex = get_strings(key, v);
    } else if (key == "stop_token_ids") {
      if (!v.is_array()) bad_type(key, "a list of token ids", v);
      for (const auto& e : v) p.stop_token_ids.push_back(get_int32(key, e));
    } else if (key == "ignore_eos") {
      p.ignore_eos = get_bool(key, v);
    } else if (key == "no_stop_trim") {
      p.no_stop_trim = get_bool(key, v);
    } else if (key == "skip_special_tokens") {
      p.skip_special_tokens = get_bool(key, v);
    } else if (key == "spaces_between_special_tokens") {
      p.spaces_between_special_tokens = get_bool(key, v);
    } else if (key == "n") {
      p.n = get_int32(key, v);
    } else if (key == "stream_interval") {
      p.stream_interval = get_int32(key, v);
    } else if (key == "json_schema") {
      p.json_schema = get_string(key, v);
    } else if (key == "regex") {
      p.regex = get_string(key, v);
    } else if (key == "ebnf") {
      p.ebnf = get_string(key, v);
    } else if (key == "structural_tag") {
      p.structural_tag = get_string(key, v);
    } else if (key == "custom_params") {
      if (!v.is_object()) bad_type(key, "an object", v);
      p.custom_params = v.dump();
    } else {
      throw ValidationError(key, "unknown sampling parameter '" + key + "'");
    }
  }
  p.validate_ranges();
  return p;
}

void SamplingParams::validate_ranges() const {
  if (!std::isfinite(temperature) || temperature < 0.0) {
    throw ValidationError("temperature", "temperature must be a non-negative finite number, got " +
                                             py_float(temperature) + ".");
  }
  if (!(top_p > 0.0 && top_p <= 1.0)) {
    throw ValidationError("top_p", "top_p must be in (0, 1], got " + py_float(top_p) + ".");
  }
  if (!(min_p >= 0.0 && min_p <= 1.0)) {
    throw ValidationError("min_p", "min_p must be in [0, 1], got " + py_float(min_p) + ".");
  }
  if (top_k < 1 && top_k != -1) {
    throw ValidationError("top_k",
                          fmt::format("top_k must be -1 (disable) or at least 1, got {}.", top_k));
  }
  if (!(frequency_penalty >= -2.0 && frequency_penalty <= 2.0)) {
    throw ValidationError("frequency_penalty", "frequency_penalty must be in [-2, 2], got " +
                                                   py_float(frequency_penalty) + ".");
  }
  if (!(presence_penalty >= -2.0 && presence_penalty <= 2.0)) {
    throw ValidationError("presence_penalty", "presence_penalty must be in [-2, 2], got " +
                                                  py_float(presence_penalty) + ".");
  }
  if (!(repetition_penalty > 0.0 && repetition_penalty <= 2.0)) {
    throw ValidationError("repetition_penalty",
                          "repetition_penalty must be in (0, 2] (1.0 = no penalty), got " +
                              py_float(repetition_penalty) + ".");
  }
  if (max_new_tokens && *max_new_tokens < 0) {
    throw ValidationError("max_new_tokens",
                          fmt::format("max_new_tokens must be at least 0, got {}.", *max_new_tokens));
  }
  if (min_new_tokens < 0 || (max_new_tokens && min_new_tokens > *max_new_tokens)) {
    throw ValidationError(
        "min_new_tokens",
        fmt::format("min_new_tokens must be in [0, max_new_tokens({})], got {}.",
                    max_new_tokens ? std::to_string(*max_new_tokens) : std::string("None"),
                    min_new_tokens));
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0) {
      throw ValidationError("logit_bias",
                            fmt::format("logit_bias must has keys in [0, V-1], got {}.", id));
    }
    if (!std::isfinite(bias) && !(std::isinf(bias) && bias < 0)) {
      throw ValidationError("logit_bias", fmt::format("logit_bias of token {} must be a finite "
                                                      "number or -inf", id));
    }
  }
  for (int32_t id : stop_token_ids) {
    if (id < 0) {
      throw ValidationError("stop_token_ids",
                            fmt::format("stop_token_ids must be token ids >= 0, got {}.", id));
    }
  }
  for (const auto& s : stop) {
    if (s.empty()) throw ValidationError("stop", "stop strings must not be empty");
  }
  if (n < 1) throw ValidationError("n", fmt::format("n must be at least 1, got {}.", n));
  if (stream_interval && *stream_interval < 1) {
    throw ValidationError("stream_interval",
                          fmt::format("stream_interval must be at least 1, got {}.", *stream_interval));
  }
  for (const auto& r : stop_regex) {
    if (r.empty()) throw ValidationError("stop_regex", "stop_regex patterns must not be empty");
  }
  if (structural_tag) {
    throw ValidationError("structural_tag", "structural_tag is not supported by this server; "
                                            "constrain with json_schema, regex or ebnf");
  }
  const int grammars = (json_schema ? 1 : 0) + (regex ? 1 : 0) + (ebnf ? 1 : 0);
  if (grammars > 1) {
    throw ValidationError(json_schema ? "json_schema" : "regex",
                          "Only one of regex, json_schema, or ebnf can be set.");
  }
}

void SamplingParams::validate(int64_t vocab_size, int64_t context_len) const {
  validate_ranges();
  for (const auto& [id, bias] : logit_bias) {
    if (id >= vocab_size) {
      throw ValidationError("logit_bias",
                            fmt::format("logit_bias must has keys in [0, {}], got {}.",
                                        vocab_size - 1, id));
    }
  }
  for (int32_t id : stop_token_ids) {
    if (id >= vocab_size) {
      throw ValidationError("stop_token_ids", fmt::format("stop_token_ids must be in [0, {}], got {}.",
                                                          vocab_size - 1, id));
    }
  }
  if (context_len > 0 && min_new_tokens >= context_len) {
    throw ValidationError("min_new_tokens",
                          fmt::format("min_new_tokens ({}) must be less than the model's context "
                                      "length ({})", min_new_tokens, context_len));
  }
}

json SamplingParams::to_json() const {
  json j;
  j["max_new_tokens"] = max_new_tokens ? json(*max_new_tokens) : json(nullptr);
  j["min_new_tokens"] = min_new_tokens;
  j["temperature"] = temperature;
  j["top_p"] = top_p;
  j["top_k"] = top_k;
  j["min_p"] = min_p;
  j["frequency_penalty"] = frequency_penalty;
  j["presence_penalty"] = presence_penalty;
  j["repetition_penalty"] = repetition_penalty;
  json bias = json::object();
  for (const auto& [id, b] : logit_bias) bias[std::to_string(id)] = b;
  j["logit_bias"] = logit_bias.empty() ? json(nullptr) : bias;
  j["sampling_seed"] = sampling_seed ? json(*sampling_seed) : json(nullptr);
  j["stop"] = stop;
  j["stop_token_ids"] = stop_token_ids;
  j["ignore_eos"] = ignore_eos;
  j["no_stop_trim"] = no_stop_trim;
  j["skip_special_tokens"] = skip_special_tokens;
  j["spaces_between_special_tokens"] = spaces_between_special_tokens;
  j["n"] = n;
  if (json_schema) j["json_schema"] = *json_schema;
  if (regex) j["regex"] = *regex;
  if (ebnf) j["ebnf"] = *ebnf;
  return j;
}

}  // namespace sable::sampling
