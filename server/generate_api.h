// SGLang's native /generate: the request (GenerateReqInput: single or batch, text or input_ids,
// per-item fields broadcast from scalars) and the response object ({"text", "output_ids",
// "meta_info"}) built from a request's accumulated output.
//
// Parsing throws HttpError (400, naming the field) or sampling::ValidationError; it does no
// tokenization (the handler does, after parsing). Plain functions and values: thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/backend.h"
#include "server/request_limits.h"

namespace sable::tokenizer {
class Tokenizer;
}

namespace sable::server {

// One item of a (possibly batched) /generate request, before tokenization.
struct GenerateItem {
  std::optional<std::string> text;
  std::optional<std::vector<int32_t>> input_ids;  // wins over text when both are given
  GenerateInput input;                            // rid, params and logprob options filled
  size_t prompt_index = 0;                        // which prompt of the request (n > 1 fans out)
};

struct GenerateRequest {
  bool is_batch = false;
  bool stream = false;
  bool return_text_in_logprobs = false;
  std::vector<GenerateItem> items;  // expanded: prompt-major, n samples each
};

// Parses a /generate body. `preferred` is a JSON object of default sampling parameters (the server's
// preferred_sampling_params) merged under each item's own; null for none. `limits` bound the
// batch, n, stop strings and grammars before anything is expanded.
GenerateRequest parse_generate_request(const nlohmann::json& body,
                                       const nlohmann::json& preferred,
                                       const RequestLimits& limits = {});

// A fresh request id (32 lowercase hex digits, as uuid4().hex).
std::string make_request_id();

// The output of one request as it accumulates from deltas.
struct GenerateOutput {
  std::string rid;
  std::string text;
  std::vector<int32_t> output_ids;
  std::vector<PositionLogprobs> output_logprobs;
  std::vector<PositionLogprobs> input_logprobs;
  std::vector<scheduler::HiddenStates> hidden_states;
  std::optional<Finish> finish;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int32_t num_retractions = 0;
  double e2e_latency = 0.0;

  // Appends a delta's text, ids and logprobs and takes its counters and finish.
  void apply(const Delta& delta);
  // An output holding only `delta` (for incremental streaming), with its counters.
  static GenerateOutput from_delta(const std::string& rid, const Delta& delta);
};

// What the response object includes beyond text/output_ids/meta_info basics.
struct NativeShape {
  bool return_logprob = false;
  bool top_logprobs = false;      // top_logprobs_num > 0
  bool token_ids_logprob = false;
  bool return_text_in_logprobs = false;
  bool with_text = true;  // false with skip_tokenizer_init: no "text" key, as SGLang answers then
  bool hidden_states = false;  // return_hidden_states: meta_info.hidden_states
  std::string weight_version = "default";
};

// The finish_reason object (or null when not finished).
nlohmann::json finish_reason_json(const std::optional<Finish>& finish);

// {"text", "output_ids", "meta_info": {...}}. `tokenizer` decodes token texts for
// return_text_in_logprobs (may be null when that is off).
nlohmann::json native_response(const GenerateOutput& out, const NativeShape& shape,
                               const tokenizer::Tokenizer* tokenizer);

// The shape options of one parsed item.
NativeShape native_shape(const GenerateInput& input, bool return_text_in_logprobs,
                         const std::string& weight_version);

}  // namespace sable::server
