// Per-request limits (see request_limits.h).
#include "server/request_limits.h"

#include <fmt/format.h>

#include "core/config/server_config.h"
#include "core/sampling/sampling_params.h"

namespace sable::server {

RequestLimits RequestLimits::from(const config::ServerConfig& c) {
  RequestLimits l;
  l.max_parallel_samples = c.max_parallel_samples;
  l.max_prompts_per_request = c.max_prompts_per_request;
  l.max_stop_strings = c.max_stop_strings;
  l.max_grammar_bytes = c.max_grammar_bytes;
  return l;
}

void check_sampling_limits(const sampling::SamplingParams& p, const RequestLimits& l) {
  if (p.n > l.max_parallel_samples) {
    throw sampling::ValidationError(
        "n", fmt::format("n ({}) is more than this server allows (max_parallel_samples = {})", p.n,
                         l.max_parallel_samples));
  }
  const size_t stops = p.stop.size() + p.stop_regex.size();
  if (static_cast<int64_t>(stops) > l.max_stop_strings) {
    throw sampling::ValidationError(
        p.stop.empty() ? "stop_regex" : "stop",
        fmt::format("{} stop strings are more than this server allows (max_stop_strings = {})",
                    stops, l.max_stop_strings));
  }
  const std::pair<const char*, const std::optional<std::string>*> grammars[] = {
      {"json_schema", &p.json_schema}, {"regex", &p.regex}, {"ebnf", &p.ebnf}};
  for (const auto& [field, text] : grammars) {
    if (*text && static_cast<int64_t>((*text)->size()) > l.max_grammar_bytes) {
      throw sampling::ValidationError(
          field, fmt::format("{} is {} bytes, more than this server allows (max_grammar_bytes = {})",
                             field, (*text)->size(), l.max_grammar_bytes));
    }
  }
}

void check_prompt_count(size_t prompts, const RequestLimits& l, const char* field) {
  if (static_cast<int64_t>(prompts) > l.max_prompts_per_request) {
    throw sampling::ValidationError(
        field, fmt::format("{} prompts in one request are more than this server allows "
                           "(max_prompts_per_request = {})",
                           prompts, l.max_prompts_per_request));
  }
}

}  // namespace sable::server
