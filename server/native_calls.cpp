// The native API's JSON-level work (see native_calls.h), moved out of the route handlers so that
// the Python binding runs the same code.
#include "server/native_calls.h"

#include <fmt/format.h>

#include "server/http_error.h"
#include "server/route_util.h"

namespace sable::server {

using nlohmann::json;

std::unique_ptr<GenerateCall> submit_generate(ServerState& state, const json& body,
                                              std::function<void(bool)> notify) {
  auto call = std::make_unique<GenerateCall>(state);
  call->request = parse_generate_request(body, *state.preferred, state.limits);
  if (call->request.return_text_in_logprobs) state.require_tokenizer("return_text_in_logprobs");
  // Tokenize and check everything before anything is queued.
  for (auto& item : call->request.items) {
    GenerateInput& in = item.input;
    if (item.input_ids) {
      in.input_ids = *item.input_ids;
      check_token_ids(state, in.input_ids, "input_ids");
      state.check_prompt_length(in.input_ids, "input_ids");
    } else {
      in.input_ids = state.prompt_ids(*item.text, true, "text");
    }
    check_token_ids(state, in.token_ids_logprob, "token_ids_logprob");
    if (in.logprob_start_len >= static_cast<int32_t>(in.input_ids.size())) {
      throw HttpError::bad_request(
          fmt::format("logprob_start_len ({}) is not smaller than the prompt length ({})",
                      in.logprob_start_len, in.input_ids.size()),
          "logprob_start_len");
    }
    in.params.validate(state.facts.vocab_size, state.facts.context_length);
  }
  const std::string weight_version = state.backend.stats().weight_version;
  for (auto& item : call->request.items) {
    GenerateOutput out;
    out.rid = item.input.rid;
    call->outputs.push_back(std::move(out));
    call->shapes.push_back(
        native_shape(item.input, call->request.return_text_in_logprobs, weight_version));
    call->shapes.back().with_text = !state.config.skip_tokenizer_init;
  }
  for (auto& item : call->request.items) {
    call->gens.push_back(state.backend.submit(item.input));
    if (notify) call->gens.back()->set_notify(notify);
  }
  return call;
}

bool is_error_abort(const std::optional<Finish>& f) {
  return f && f->type == Finish::Type::kAbort && f->status_code >= 400;
}

json generate_response(const GenerateCall& call, const tokenizer::Tokenizer& tok) {
  for (const auto& out : call.outputs) {
    if (is_error_abort(out.finish)) throw HttpError(out.finish->status_code, out.finish->message);
  }
  if (!call.request.is_batch) return native_response(call.outputs[0], call.shapes[0], &tok);
  json arr = json::array();
  for (size_t i = 0; i < call.outputs.size(); ++i) {
    arr.push_back(native_response(call.outputs[i], call.shapes[i], &tok));
  }
  return arr;
}

json stream_chunk(GenerateCall& call, size_t i, const Delta& d, bool incremental,
                  const tokenizer::Tokenizer& tok) {
  GenerateOutput& out = call.outputs[i];
  out.apply(d);
  if (d.token_ids.empty() && d.text.empty() && !d.finish) return nullptr;
  json chunk = incremental
                   ? native_response(GenerateOutput::from_delta(out.rid, d), call.shapes[i], &tok)
                   : native_response(out, call.shapes[i], &tok);
  if (call.request.is_batch) chunk["index"] = i;
  return chunk;
}

json model_info(ServerState& state) {
  const auto& c = state.config;
  return {{"model_path", state.facts.model_path},
          {"served_model_name", state.served_name()},
          {"tokenizer_path", state.facts.tokenizer_path},
          {"is_generation", state.facts.is_generation},
          {"preferred_sampling_params",
           c.preferred_sampling_params.empty() ? json(nullptr) : json(c.preferred_sampling_params)},
          {"weight_version", state.backend.stats().weight_version},
          {"reasoning_parser", c.reasoning_parser.empty() ? json(nullptr) : json(c.reasoning_parser)},
          {"tool_call_parser", c.tool_call_parser.empty() ? json(nullptr) : json(c.tool_call_parser)},
          {"has_image_understanding", state.facts.image_input},
          {"has_audio_understanding", false}};
}

json server_info(ServerState& state) {
  json info = config::to_json(state.config);
  const BackendStats s = state.backend.stats();
  const ModelFacts& f = state.facts;
  info["status"] = state.draining ? "draining" : (state.ready ? "ready" : "starting");
  info["version"] = "0.1.0";
  info["max_total_num_tokens"] = f.max_total_num_tokens;
  info["max_req_input_len"] = f.context_length > 0 ? f.context_length - 1 : 0;
  info["context_length_effective"] = f.context_length;
  info["weight_version"] = s.weight_version;
  info["internal_states"] = json::array({{{"num_running_reqs", s.running},
                                          {"num_queue_reqs", s.queued},
                                          {"num_used_tokens", s.used_tokens},
                                          {"num_cached_tokens", s.cached_tokens_in_pool},
                                          {"token_usage", s.kv_usage},
                                          {"cache_hit_rate", s.cache_hit_rate},
                                          {"prompt_tokens_total", s.prompt_tokens},
                                          {"generation_tokens_total", s.generation_tokens},
                                          {"jump_forward_tokens_total", s.jump_forward_tokens},
                                          {"finished_requests", s.finished_requests},
                                          {"forward_steps_total", s.forward_steps},
                                          {"extend_steps_total", s.extend_steps},
                                          {"max_batch_size", s.max_batch_size},
                                          {"step_time_us", s.step_time_us},
                                          {"model_time_us", s.model_time_us},
                                          {"host_time_us", s.step_time_us - s.model_time_us},
                                          {"kv_pages_total", s.kv_pages_total},
                                          {"kv_pages_free", s.kv_pages_free},
                                          {"kv_pages_cached", s.kv_pages_cached},
                                          {"kv_pages_evictable", s.kv_pages_evictable},
                                          {"http_requests_in_flight", state.in_flight.load()}}});
  return info;
}

}  // namespace sable::server
