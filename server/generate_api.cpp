// /generate request parsing and response shaping (see generate_api.h). Field handling follows
// SGLang's GenerateReqInput.normalize_batch_and_arguments (spec/sglang_api.md section 1).
#include "server/generate_api.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/engine/result_json.h"
#include "core/tokenizer/tokenizer.h"
#include "server/http_error.h"
#include "server/unsupported_fields.h"

namespace sable::server {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw HttpError::bad_request(message, field);
}

bool is_int_array(const json& v) {
  if (!v.is_array()) return false;
  for (const auto& x : v) {
    if (!x.is_number_integer()) return false;
  }
  return true;
}

std::vector<int32_t> to_ids(const std::string& field, const json& v) {
  if (!is_int_array(v)) bad(field, fmt::format("{} must be a list of integers", field));
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (const auto& x : v) {
    const int64_t id = x.get<int64_t>();
    if (id < 0 || id > INT32_MAX) bad(field, fmt::format("{} has an invalid token id {}", field, id));
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// A per-item field: a scalar (or null) broadcast to every item, or a list of the batch size.
// Returns the item's value, or null for absent.
json per_item(const json& body, const std::string& field, size_t batch, size_t i, bool is_batch,
              bool value_is_list = false) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return nullptr;
  const bool listed = is_batch && it->is_array() &&
                      (!value_is_list || it->empty() || it->front().is_array() ||
                       it->front().is_null());
  if (!listed) return *it;
  if (it->size() != batch) {
    bad(field, fmt::format("{} has {} entries but the batch has {} prompts", field, it->size(),
                           batch));
  }
  return (*it)[i];
}

// image_data of item i: for one prompt a reference or a list of them; for a batch one entry per
// prompt (a reference, a list, or null). A reference is a string or {"url": string}.
std::vector<std::string> image_refs(const json& body, size_t batch, size_t i, bool is_batch) {
  auto it = body.find("image_data");
  if (it == body.end() || it->is_null()) return {};
  const json* v = &*it;
  if (is_batch) {
    if (!v->is_array() || v->size() != batch)
      bad("image_data", fmt::format("image_data of a batch must be a list with one entry (an "
                                    "image, a list of images or null) per prompt; the batch has "
                                    "{} prompts",
                                    batch));
    v = &(*v)[i];
  }
  std::vector<std::string> out;
  auto add = [&](const json& ref) {
    if (ref.is_object() && ref.contains("url") && ref["url"].is_string())
      out.push_back(ref["url"].get<std::string>());
    else if (ref.is_string())
      out.push_back(ref.get<std::string>());
    else
      bad("image_data", "image_data: an image must be a string (path, URL, data: URL or base64) "
                        "or {\"url\": string}");
  };
  if (v->is_array()) {
    for (const auto& ref : *v) add(ref);
  } else if (!v->is_null()) {
    add(*v);
  }
  return out;
}

bool as_bool(const std::string& field, const json& v, bool fallback) {
  if (v.is_null()) return fallback;
  if (!v.is_boolean()) bad(field, fmt::format("{} must be a boolean, got {}", field, v.dump()));
  return v.get<bool>();
}

int32_t as_int(const std::string& field, const json& v, int32_t fallback) {
  if (v.is_null()) return fallback;
  if (!v.is_number_integer()) bad(field, fmt::format("{} must be an integer, got {}", field, v.dump()));
  const int64_t x = v.get<int64_t>();
  if (x < INT32_MIN || x > INT32_MAX) bad(field, fmt::format("{} is out of range: {}", field, x));
  return static_cast<int32_t>(x);
}

sampling::SamplingParams parse_params(const json& given, const json& preferred) {
  if (!given.is_null() && !given.is_object()) {
    bad("sampling_params", "sampling_params must be a JSON object");
  }
  json merged = preferred.is_object() ? preferred : json::object();
  if (given.is_object()) {
    for (auto it = given.begin(); it != given.end(); ++it) {
      if (!it.value().is_null()) merged[it.key()] = it.value();
    }
  }
  return sampling::SamplingParams::from_json(merged);
}

}  // namespace

std::string make_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

GenerateRequest parse_generate_request(const json& body, const json& preferred,
                                       const RequestLimits& limits) {
  if (!body.is_object()) bad("", "the request body must be a JSON object");
  reject_unsupported_fields(body);
  GenerateRequest req;
  req.stream = as_bool("stream", body.value("stream", json(nullptr)), false);
  req.return_text_in_logprobs =
      as_bool("return_text_in_logprobs", body.value("return_text_in_logprobs", json(nullptr)), false);
  if (body.contains("input_embeds") && !body["input_embeds"].is_null()) {
    bad("input_embeds", "input_embeds is not supported by this server; send text or input_ids");
  }

  // Prompts: text decides the batch shape; input_ids, when given, supply the tokens.
  const json text = body.value("text", json(nullptr));
  const json ids = body.value("input_ids", json(nullptr));
  std::vector<std::optional<std::string>> texts;
  std::vector<std::optional<std::vector<int32_t>>> id_lists;
  if (text.is_null() && ids.is_null()) {
    bad("text", "Either text, input_ids or input_embeds should be provided.");
  }
  if (!text.is_null()) {
    if (text.is_string()) {
      texts.push_back(text.get<std::string>());
    } else if (text.is_array()) {
      req.is_batch = true;
      for (const auto& t : text) {
        if (!t.is_string()) bad("text", "text must be a string or a list of strings");
        texts.push_back(t.get<std::string>());
      }
    } else {
      bad("text", "text must be a string or a list of strings");
    }
  }
  if (!ids.is_null()) {
    if (!ids.is_array()) bad("input_ids", "input_ids must be a list of integers or of lists");
    const bool nested = !ids.empty() && ids.front().is_array();
    if (nested) {
      for (const auto& row : ids) id_lists.push_back(to_ids("input_ids", row));
    } else {
      id_lists.push_back(to_ids("input_ids", ids));
    }
    if (text.is_null()) req.is_batch = nested;
    for (const auto& row : id_lists) {
      if (row->empty()) bad("input_ids", "input_ids cannot be empty.");
    }
  }
  const size_t batch = texts.empty() ? id_lists.size() : texts.size();
  if (batch == 0) bad(texts.empty() ? "input_ids" : "text", "the batch is empty");
  check_prompt_count(batch, limits, texts.empty() ? "input_ids" : "text");
  if (!id_lists.empty() && id_lists.size() != batch) {
    bad("input_ids", fmt::format("input_ids has {} prompts but text has {}", id_lists.size(), batch));
  }

  // The rid field: one string per item, "<rid>_<i>" for a single string in a batch.
  const json rid = body.value("rid", json(nullptr));
  if (!rid.is_null() && !rid.is_string() && !rid.is_array()) {
    bad("rid", "rid must be a string or a list of strings");
  }
  if (rid.is_array() && rid.size() != batch) {
    bad("rid", fmt::format("rid has {} entries but the batch has {} prompts", rid.size(), batch));
  }

  const json sp = body.value("sampling_params", json(nullptr));
  if (sp.is_array() && sp.size() != batch) {
    bad("sampling_params",
        fmt::format("sampling_params has {} entries but the batch has {} prompts", sp.size(), batch));
  }
  int32_t n_all = -1;
  std::set<std::string> seen_rids;
  for (size_t i = 0; i < batch; ++i) {
    GenerateItem item;
    item.prompt_index = i;
    if (!texts.empty()) item.text = texts[i];
    if (!id_lists.empty()) item.input_ids = id_lists[i];
    GenerateInput& in = item.input;
    in.params = parse_params(sp.is_array() ? sp[i] : sp, preferred);
    check_sampling_limits(in.params, limits);
    if (n_all >= 0 && in.params.n != n_all) {
      bad("sampling_params", "The parallel_sample_num should be the same for all samples in "
                             "sample params.");
    }
    n_all = in.params.n;
    in.return_logprob = as_bool("return_logprob",
                                per_item(body, "return_logprob", batch, i, req.is_batch), false);
    in.logprob_start_len = as_int(
        "logprob_start_len", per_item(body, "logprob_start_len", batch, i, req.is_batch), -1);
    in.top_logprobs_num = as_int(
        "top_logprobs_num", per_item(body, "top_logprobs_num", batch, i, req.is_batch), 0);
    if (in.top_logprobs_num < 0) bad("top_logprobs_num", "top_logprobs_num must be at least 0");
    in.return_hidden_states = as_bool(
        "return_hidden_states", per_item(body, "return_hidden_states", batch, i, req.is_batch),
        false);
    const json til = per_item(body, "token_ids_logprob", batch, i, req.is_batch, true);
    if (!til.is_null()) in.token_ids_logprob = to_ids("token_ids_logprob", til);
    const json lora = per_item(body, "lora_path", batch, i, req.is_batch);
    if (!lora.is_null()) {
      if (!lora.is_string())
        bad("lora_path", "lora_path must be an adapter name, or one (or null) per prompt");
      in.lora_path = lora.get<std::string>();
    }
    in.image_data = image_refs(body, batch, i, req.is_batch);
    if (rid.is_string()) {
      in.rid = req.is_batch ? fmt::format("{}_{}", rid.get<std::string>(), i) : rid.get<std::string>();
    } else if (rid.is_array()) {
      if (!rid[i].is_string()) bad("rid", "rid must be a string or a list of strings");
      in.rid = rid[i].get<std::string>();
    } else {
      in.rid = make_request_id();
    }
    if (!seen_rids.insert(in.rid).second) {
      bad("rid", fmt::format("Duplicate request IDs detected within the request: [{}]", in.rid));
    }
    req.items.push_back(std::move(item));
  }

  // Parallel sampling: n copies of each prompt, prompt-major, each with a fresh rid.
  if (n_all > 1) {
    for (const char* field : {"return_logprob", "logprob_start_len", "top_logprobs_num"}) {
      if (body.contains(field) && body[field].is_array()) {
        bad(field, fmt::format("Cannot use list {} with parallel_sample_num > 1", field));
      }
    }
    std::vector<GenerateItem> expanded;
    for (const auto& item : req.items) {
      for (int32_t j = 0; j < n_all; ++j) {
        GenerateItem copy = item;
        copy.input.params.n = 1;
        copy.input.rid = make_request_id();
        expanded.push_back(std::move(copy));
      }
    }
    req.items = std::move(expanded);
    req.is_batch = true;
  }
  return req;
}

void GenerateOutput::apply(const Delta& d) {
  text += d.text;
  output_ids.insert(output_ids.end(), d.token_ids.begin(), d.token_ids.end());
  output_logprobs.insert(output_logprobs.end(), d.output_logprobs.begin(), d.output_logprobs.end());
  input_logprobs.insert(input_logprobs.end(), d.input_logprobs.begin(), d.input_logprobs.end());
  hidden_states.insert(hidden_states.end(), d.hidden_states.begin(), d.hidden_states.end());
  if (d.finish) finish = d.finish;
  prompt_tokens = d.prompt_tokens;
  completion_tokens = d.completion_tokens;
  cached_tokens = d.cached_tokens;
  num_retractions = d.num_retractions;
  if (d.finish) e2e_latency = d.e2e_latency;
}

GenerateOutput GenerateOutput::from_delta(const std::string& rid, const Delta& d) {
  GenerateOutput out;
  out.rid = rid;
  out.apply(d);
  return out;
}

json finish_reason_json(const std::optional<Finish>& finish) {
  if (!finish) return nullptr;
  switch (finish->type) {
    case Finish::Type::kStop: {
      json matched = nullptr;
      if (finish->matched_text) matched = *finish->matched_text;
      else if (finish->matched_token) matched = *finish->matched_token;
      return {{"type", "stop"}, {"matched", matched}};
    }
    case Finish::Type::kLength:
      return {{"type", "length"}, {"length", finish->length}};
    case Finish::Type::kAbort:
      return {{"type", "abort"},
              {"message", finish->message},
              {"status_code", finish->status_code ? json(finish->status_code) : json(nullptr)}};
  }
  return nullptr;
}

namespace {

json logprob_value(float v) { return std::isnan(v) ? json(nullptr) : json(v); }

json triple(const Logprob& lp, const tokenizer::Tokenizer* tok, bool with_text) {
  json text = nullptr;
  if (with_text && tok) {
    const int32_t id = lp.token;
    text = tok->decode(std::span<const int32_t>(&id, 1), false);
  }
  return json::array({logprob_value(lp.logprob), lp.token, std::move(text)});
}

void add_logprobs(json& meta, const char* side, const std::vector<PositionLogprobs>& positions,
                  const NativeShape& shape, const tokenizer::Tokenizer* tok) {
  const bool txt = shape.return_text_in_logprobs;
  json chosen = json::array();
  json top = json::array();
  json by_id = json::array();
  for (const auto& p : positions) {
    chosen.push_back(triple(p.chosen, tok, txt));
    if (shape.top_logprobs) {
      json row = json::array();
      for (const auto& t : p.top) row.push_back(triple(t, tok, txt));
      top.push_back(std::move(row));
    }
    if (shape.token_ids_logprob) {
      json row = json::array();
      for (const auto& t : p.token_ids) row.push_back(triple(t, tok, txt));
      by_id.push_back(std::move(row));
    }
  }
  meta[fmt::format("{}_token_logprobs", side)] = std::move(chosen);
  if (shape.top_logprobs) meta[fmt::format("{}_top_logprobs", side)] = std::move(top);
  if (shape.token_ids_logprob) meta[fmt::format("{}_token_ids_logprobs", side)] = std::move(by_id);
}

}  // namespace

NativeShape native_shape(const GenerateInput& input, bool return_text_in_logprobs,
                         const std::string& weight_version) {
  NativeShape shape;
  shape.return_logprob = input.return_logprob;
  shape.top_logprobs = input.return_logprob && input.top_logprobs_num > 0;
  shape.token_ids_logprob = input.return_logprob && !input.token_ids_logprob.empty();
  shape.return_text_in_logprobs = return_text_in_logprobs;
  shape.weight_version = weight_version;
  shape.hidden_states = input.return_hidden_states;
  return shape;
}

json native_response(const GenerateOutput& out, const NativeShape& shape,
                     const tokenizer::Tokenizer* tokenizer) {
  json meta = {{"id", out.rid},
               {"finish_reason", finish_reason_json(out.finish)},
               {"prompt_tokens", out.prompt_tokens},
               {"completion_tokens", out.completion_tokens},
               {"cached_tokens", out.cached_tokens},
               {"weight_version", shape.weight_version},
               {"num_retractions", out.num_retractions}};
  if (shape.return_logprob) {
    add_logprobs(meta, "input", out.input_logprobs, shape, tokenizer);
    add_logprobs(meta, "output", out.output_logprobs, shape, tokenizer);
  }
  if (out.finish) meta["e2e_latency"] = out.e2e_latency;
  if (shape.hidden_states) meta["hidden_states"] = engine::hidden_states_json(out.hidden_states);
  if (!shape.with_text) return {{"output_ids", out.output_ids}, {"meta_info", std::move(meta)}};
  return {{"text", out.text}, {"output_ids", out.output_ids}, {"meta_info", std::move(meta)}};
}

}  // namespace sable::server
