// Per-request sampling parameters: SGLang's `sampling_params` object, its defaults, JSON parsing and
// validation. Every bad value is reported as a ValidationError whose message names the field (and,
// for range checks, uses SGLang's exact wording), which the HTTP server maps to 400.
// Plain value type; thread-safe as any const object.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sable::sampling {

// Invalid request input. field() is the offending parameter's name ("top_p", "logit_bias", ...).
class ValidationError : public std::invalid_argument {
 public:
  ValidationError(std::string field, const std::string& message)
      : std::invalid_argument(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

struct SamplingParams {
  // Length. max_new_tokens nullopt = until the context limit.
  std::optional<int32_t> max_new_tokens = 128;
  int32_t min_new_tokens = 0;
  // Distribution shaping. temperature < 1e-6 means greedy.
  double temperature = 1.0;
  double top_p = 1.0;
  int32_t top_k = -1;  // -1 = off
  double min_p = 0.0;
  double frequency_penalty = 0.0;
  double presence_penalty = 0.0;
  double repetition_penalty = 1.0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, additive bias)
  std::optional<uint64_t> sampling_seed;
  // Stopping.
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop_regex;
  bool ignore_eos = false;
  bool no_stop_trim = false;
  // Detokenization.
  bool skip_special_tokens = true;
  bool spaces_between_special_tokens = true;
  // Fan-out and streaming.
  int32_t n = 1;
  std::optional<int32_t> stream_interval;
  // Constrained decoding (at most one of json_schema, regex, ebnf).
  std::optional<std::string> json_schema;
  std::optional<std::string> regex;
  std::optional<std::string> ebnf;
  std::optional<std::string> structural_tag;
  std::optional<std::string> custom_params;  // the JSON object, serialized

  static constexpr double kGreedyEpsilon = 1e-6;
  bool is_greedy() const { return temperature < kGreedyEpsilon || top_k == 1; }

  // Parses a JSON object (null or absent fields keep their defaults; unknown keys, wrong types and
  // out-of-range values throw ValidationError naming the field). Runs validate_ranges().
  static SamplingParams from_json(const nlohmann::json& j);
  // The checks that need no model: SGLang's messages, e.g. "top_p must be in (0, 1], got 1.5.".
  void validate_ranges() const;
  // validate_ranges() plus the model-dependent checks: logit_bias and stop_token_ids keys inside
  // [0, vocab_size), n >= 1 and min_new_tokens below context_len.
  void validate(int64_t vocab_size, int64_t context_len) const;
  // The object in SGLang's JSON shape (for logs, /get_model_info-style echoes and tests).
  nlohmann::json to_json() const;
};

}  // namespace sable::sampling
