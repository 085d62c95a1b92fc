// Per-request limits from the configuration, so that one request cannot ask the server for an
// unbounded amount of work or memory: parallel samples (n), prompts in one batch, stop strings and
// grammar text. A request over a limit is refused with 400 naming the field and the option before
// anything is queued. (The body size, request time and prompt length are bounded elsewhere:
// max_request_body_bytes and request_timeout_s in http_connection.h, the context length in
// server_state.h.) Plain values and pure functions: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sable::config {
struct ServerConfig;
}
namespace sable::sampling {
struct SamplingParams;
}

namespace sable::server {

// The defaults are the options' defaults (core/config/server_config.h).
struct RequestLimits {
  int64_t max_parallel_samples = 128;
  int64_t max_prompts_per_request = 1024;
  int64_t max_stop_strings = 64;
  int64_t max_grammar_bytes = 262144;

  static RequestLimits from(const config::ServerConfig& config);
};

// n, the stop strings (stop + stop_regex) and the grammar text (regex, json_schema, ebnf) of one
// request: throws sampling::ValidationError naming the field.
void check_sampling_limits(const sampling::SamplingParams& params, const RequestLimits& limits);

// The number of prompts of a batched request (`field`: text, input_ids, prompt): throws
// sampling::ValidationError naming it.
void check_prompt_count(size_t prompts, const RequestLimits& limits, const char* field);

}  // namespace sable::server
