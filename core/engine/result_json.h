// GenerateResult in SGLang's JSON shape: {"text", "output_ids", "meta_info": {id, finish_reason,
// prompt_tokens, completion_tokens, cached_tokens, e2e_latency, weight_version, logprobs...}}.
// Kept apart from engine.h so that including the engine does not pull in nlohmann/json.hpp.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/engine/engine.h"

namespace sable::engine {

// {"type":"stop","matched":...} | {"type":"length","length":N} | {"type":"abort",...}
nlohmann::json finish_reason_json(const FinishReason& f);
// meta_info.hidden_states: a prefill entry as a list of rows, a decode entry as one row.
nlohmann::json hidden_states_json(const std::vector<scheduler::HiddenStates>& states);
// The last position's hidden state (OpenAI routes: choices[i].hidden_states), [] when only the
// prefill ran, as SGLang's process_hidden_states_for_response.
nlohmann::json last_hidden_state_json(const std::vector<scheduler::HiddenStates>& states);
// With return_text_in_logprobs the token texts are filled from `tok` (else null).
nlohmann::json result_json(const GenerateResult& r, bool return_logprob,
                           const tokenizer::Tokenizer* tok = nullptr);

}  // namespace sable::engine
