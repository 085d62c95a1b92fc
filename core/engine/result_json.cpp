// JSON rendering of engine results (see result_json.h).
#include "core/engine/result_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"

namespace sable::engine {
namespace {

using nlohmann::json;

json triple(const scheduler::TokenLogprob& t, const tokenizer::Tokenizer* tok) {
  json lp = std::isnan(t.logprob) ? json(nullptr) : json(t.logprob);
  json text = nullptr;
  if (tok != nullptr) {
    const int32_t id = t.token;
    text = tok->decode(std::span<const int32_t>(&id, 1), false, true);
  }
  return json::array({lp, t.token, text});
}

}  // namespace

json finish_reason_json(const FinishReason& f) {
  json j;
  j["type"] = f.type_name();
  switch (f.type) {
    case FinishReason::Type::kStop:
      if (f.matched_text) j["matched"] = *f.matched_text;
      else if (f.matched_token) j["matched"] = *f.matched_token;
      else j["matched"] = nullptr;
      break;
    case FinishReason::Type::kLength:
      j["length"] = f.length;
      break;
    case FinishReason::Type::kAbort:
      j["message"] = f.message;
      j["status_code"] = f.status_code != 0 ? json(f.status_code) : json(nullptr);
      j["err_type"] = nullptr;
      break;
  }
  return j;
}

json result_json(const GenerateResult& r, bool return_logprob, const tokenizer::Tokenizer* tok) {
  const MetaInfo& m = r.meta_info;
  json meta;
  meta["id"] = m.id;
  meta["finish_reason"] = m.finish_reason ? finish_reason_json(*m.finish_reason) : json(nullptr);
  meta["prompt_tokens"] = m.prompt_tokens;
  meta["completion_tokens"] = m.completion_tokens;
  meta["cached_tokens"] = m.cached_tokens;
  meta["weight_version"] = m.weight_version;
  meta["num_retractions"] = m.num_retractions;
  if (m.finish_reason) meta["e2e_latency"] = m.e2e_latency;
  if (m.return_hidden_states) meta["hidden_states"] = hidden_states_json(m.hidden_states);
  if (return_logprob) {
    auto render = [&](const std::vector<PositionLogprobs>& v, const char* chosen, const char* top,
                      const char* ids) {
      json c = json::array(), t = json::array(), i = json::array();
      bool any_top = false, any_ids = false;
      for (const auto& p : v) {
        c.push_back(triple(p.chosen, tok));
        json tt = json::array(), ii = json::array();
        for (const auto& x : p.top) tt.push_back(triple(x, tok));
        for (const auto& x : p.token_ids) ii.push_back(triple(x, tok));
        any_top |= !p.top.empty();
        any_ids |= !p.token_ids.empty();
        t.push_back(p.top.empty() ? json(nullptr) : tt);
        i.push_back(p.token_ids.empty() ? json(nullptr) : ii);
      }
      meta[chosen] = c;
      if (any_top) meta[top] = t;
      if (any_ids) meta[ids] = i;
    };
    render(m.input_logprobs, "input_token_logprobs", "input_top_logprobs",
           "input_token_ids_logprobs");
    render(m.output_logprobs, "output_token_logprobs", "output_top_logprobs",
           "output_token_ids_logprobs");
  }
  json j;
  j["text"] = r.text;
  j["output_ids"] = r.output_ids;
  j["meta_info"] = meta;
  if (r.index != 0) j["index"] = r.index;
  return j;
}

}  // namespace sable::engine
