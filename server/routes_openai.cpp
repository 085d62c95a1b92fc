// OpenAI-compatible routes: /v1/completions and /v1/chat/completions, streaming (SSE deltas,
// stream_options.include_usage) and not. Shapes: spec/openai_openapi.yaml; SGLang's mapping:
// spec/sglang_api.md section 3.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"
#include "server/http_error.h"
#include "server/model_kind.h"
#include "server/openai_api.h"
#include "server/route_util.h"
#include "server/stream_pump.h"

namespace sable::server {

namespace {

using nlohmann::json;

struct OpenAICall {
  explicit OpenAICall(ServerState& s) : in_flight(s) {}
  ServerState::InFlight in_flight;
  OpenAIRequest request;
  ResponseHead head;
  std::vector<std::string> prompt_texts;  // per choice (echo)
  std::vector<std::unique_ptr<Generation>> gens;
  std::vector<GenerateOutput> outputs;
};

std::shared_ptr<OpenAICall> start(ServerState& state, OpenAIRequest request) {
  auto call = std::make_shared<OpenAICall>(state);
  call->request = std::move(request);
  OpenAIRequest& r = call->request;
  const std::string lora = state.lora_of_model(r.model);
  r.params.validate(state.facts.vocab_size, state.facts.context_length);
  check_sampling_limits(r.params, state.limits);
  check_prompt_count(r.prompts.size(), state.limits, r.chat ? "messages" : "prompt");
  call->head.id = fmt::format("{}{}", r.chat ? "chatcmpl-" : "cmpl-", r.rid);
  call->head.created = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  call->head.model = r.model;
  call->head.weight_version = state.backend.stats().weight_version;
  call->head.cache_report = state.config.enable_cache_report;

  const int32_t n = r.params.n;
  std::vector<GenerateInput> inputs;
  const char* field = r.chat ? "messages" : "prompt";
  for (size_t p = 0; p < r.prompts.size(); ++p) {
    const OpenAIPrompt& prompt = r.prompts[p];
    GenerateInput base;
    if (prompt.ids) {
      base.input_ids = *prompt.ids;
      check_token_ids(state, base.input_ids, field);
      state.check_prompt_length(base.input_ids, field);
    } else {
      // A chat prompt already carries the template's special tokens.
      base.input_ids = state.prompt_ids(*prompt.text, !r.chat, field);
    }
    const std::string prompt_text =
        prompt.text ? *prompt.text : state.tokenizer.decode(base.input_ids, false);
    base.params = r.params;
    base.params.n = 1;
    base.lora_path = lora;
    base.image_data = r.image_data;
    base.return_logprob = r.logprobs;
    base.return_hidden_states = r.return_hidden_states;
    base.top_logprobs_num = r.top_logprobs;
    if (r.echo && r.logprobs) base.logprob_start_len = 0;  // the echoed prompt's logprobs too
    for (int32_t j = 0; j < n; ++j) {
      GenerateInput in = base;
      in.rid = (r.prompts.size() == 1 && n == 1) ? r.rid : fmt::format("{}_{}", r.rid, p * n + j);
      inputs.push_back(std::move(in));
      call->prompt_texts.push_back(prompt_text);
    }
  }
  call->outputs.resize(inputs.size());
  for (auto& in : inputs) call->gens.push_back(state.backend.submit(std::move(in)));
  return call;
}

std::vector<ChoiceOutput> choices_of(const OpenAICall& call) {
  std::vector<ChoiceOutput> choices;
  for (size_t i = 0; i < call.outputs.size(); ++i) {
    choices.push_back({&call.outputs[i], call.prompt_texts[i]});
  }
  return choices;
}

json error_event(const Finish& f) {
  return json::parse(error_body(f.status_code, f.message));
}

void respond(ServerState& state, std::shared_ptr<OpenAICall> call, httplib::Response& res) {
  const OpenAIRequest& r = call->request;
  if (!r.stream) {
    pump_generations(call->gens, state.metrics,
                     [&](size_t i, const Delta& d) {
                       call->outputs[i].apply(d);
                       return true;
                     },
                     [] { return true; });
    for (const auto& out : call->outputs) {
      if (out.finish && out.finish->type == Finish::Type::kAbort && out.finish->status_code >= 400) {
        throw HttpError(out.finish->status_code, out.finish->message);
      }
    }
    const auto choices = choices_of(*call);
    send_json(res, r.chat ? chat_response(call->head, r, choices, state.tokenizer)
                          : completion_response(call->head, r, choices, state.tokenizer));
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [&state, call](size_t,
                                                                       httplib::DataSink& sink) {
    const OpenAIRequest& r = call->request;
    auto write = [&](const json& j) {
      const std::string s = sse_event(j);
      return sink.write(s.data(), s.size());
    };
    std::vector<int64_t> offsets(call->gens.size(), 0);
    // Chat output parsing (tool calls, reasoning), one parser per choice; inactive: plain deltas.
    std::vector<ChatOutputParser> parsers;
    if (r.chat) parsers.assign(call->gens.size(), ChatOutputParser(r));
    const bool parsing = r.chat && !parsers.empty() && parsers.front().active();
    for (size_t i = 0; i < call->gens.size(); ++i) {
      if (r.chat && !write(chat_role_chunk(call->head, static_cast<int>(i)))) return false;
    }
    // Echo: the prompt is a choice's first chunk, sent with its first delta, which carries the
    // prompt's logprobs when they were asked for.
    std::vector<bool> echoed(call->gens.size(), r.chat || !r.echo);
    auto echo_prompt = [&](size_t i, const Delta& first) {
      echoed[i] = true;
      Delta echo;
      echo.text = call->prompt_texts[i];
      echo.output_logprobs = first.input_logprobs;
      offsets[i] = static_cast<int64_t>(echo.text.size());
      return write(completion_chunk(call->head, r, static_cast<int>(i), echo, state.tokenizer, 0));
    };
    bool errored = false;
    const bool finished = pump_generations(
        call->gens, state.metrics,
        [&](size_t i, const Delta& d) {
          call->outputs[i].apply(d);
          if (d.finish && d.finish->type == Finish::Type::kAbort && d.finish->status_code >= 400) {
            errored = true;
            return write(error_event(*d.finish));
          }
          if (!echoed[i] && !echo_prompt(i, d)) return false;
          if (d.text.empty() && d.output_logprobs.empty() && !d.finish) return true;
          const int index = static_cast<int>(i);
          json chunk;
          if (parsing) {
            auto parsed = chat_parsed_chunk(call->head, r, index, d, state.tokenizer, parsers[i]);
            if (!parsed) return true;  // held back until it is known whether it is a call
            chunk = std::move(*parsed);
          } else {
            chunk = r.chat ? chat_chunk(call->head, r, index, d, state.tokenizer)
                           : completion_chunk(call->head, r, index, d, state.tokenizer, offsets[i]);
          }
          offsets[i] += static_cast<int64_t>(d.text.size());
          if (r.continuous_usage_stats) {
            chunk["usage"] = usage_json(choices_of(*call), r.params.n, call->head.cache_report);
          }
          return write(chunk);
        },
        [&] { return sink.is_writable(); });
    if (!finished) return false;
    if (r.include_usage && !errored) {
      const json usage = usage_json(choices_of(*call), r.params.n, call->head.cache_report);
      if (!write(usage_chunk(call->head, r.chat, usage))) return false;
    }
    const std::string done = kSseDone;
    sink.write(done.data(), done.size());
    sink.done();
    return true;
  });
}

}  // namespace

void register_openai_routes(httplib::Server& svr, ServerState& state) {
  svr.Post("/v1/completions", guarded(state, [&state](const auto& req, auto& res) {
    const json body = parse_body(req);
    require_model_kind(state, "/v1/completions", {kGenerationKind});
    state.require_tokenizer("prompt");  // the response is text
    state.check_admission();
    respond(state, start(state, parse_completion_request(body, *state.preferred)), res);
  }));
  auto chat = guarded(state, [&state](const auto& req, auto& res) {
    const nlohmann::ordered_json body = parse_body_ordered(req);
    require_model_kind(state, req.path.c_str(), {kGenerationKind});
    state.require_tokenizer("messages");
    state.check_admission();
    const ChatParsers parsers{tool_call_format_from_name(state.config.tool_call_parser),
                              reasoning_format_from_name(state.config.reasoning_parser)};
    respond(state, start(state, parse_chat_request(body, *state.preferred, state.chat, parsers)),
            res);
  });
  svr.Post("/v1/chat/completions", chat);
  svr.Post("/invocations", chat);  // SageMaker's name for the same request
}

}  // namespace sable::server
