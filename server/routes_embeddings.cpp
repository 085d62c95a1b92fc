// Embedding routes of an is_embedding server: OpenAI's POST /v1/embeddings and SGLang's native
// POST/PUT /encode (and /classify, the same request for score models, routes_scoring.cpp). Both
// tokenize (text with special tokens, as /generate; /encode's [text, text] pairs with the
// tokenizer's pair template for cross-encoders), check the ids and the context length, and hand
// one batch to Backend::embed. `dimensions` (Matryoshka truncation) is validated by the engine.
// Shapes: spec/sglang_api.md, "/encode request" (section 1) and "/v1/embeddings" (section 3). A
// generation model answers 400 with SGLang's message naming the route; images are refused.
#include <fmt/format.h>

#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/tokenizer/tokenizer.h"
#include "server/generate_api.h"
#include "server/http_error.h"
#include "server/model_kind.h"
#include "server/native_calls.h"
#include "server/route_util.h"

namespace sable::server {

namespace {

using nlohmann::json;

constexpr const char* kNotEmbeddingModel =
    "This model does not appear to be an embedding model by default. Please add `--is-embedding` "
    "when launching the server or try another model.";

// One prompt before tokenization: text (or a text pair), or token ids.
struct Prompt {
  std::optional<std::string> text;
  std::vector<int32_t> ids;
  std::optional<std::string> pair;  // the second text of a cross-encoder pair
};

// SGLang's message for an embedding route on a generation server, naming the route.
[[noreturn]] void refuse_generation(const char* route) {
  throw HttpError::bad_request(
      fmt::format("{} ({} needs an embedding or score model; this server serves a generation "
                  "model)",
                  kNotEmbeddingModel, route),
      "model");
}

bool blank(const std::string& s) {
  for (unsigned char c : s) {
    if (!std::isspace(c)) return false;
  }
  return true;
}

// A JSON token id list; `where` describes the list in messages ("input", "input at index 2").
std::vector<int32_t> token_ids(const json& arr, const std::string& where, const char* field) {
  std::vector<int32_t> ids;
  for (size_t j = 0; j < arr.size(); ++j) {
    const json& x = arr[j];
    if (!x.is_number_integer()) {
      throw HttpError::bad_request(fmt::format("All items in {} must be integers", where), field);
    }
    const int64_t id = x.get<int64_t>();
    if (id < 0) {
      throw HttpError::bad_request(
          fmt::format("Token ID at index {} of {} must be non-negative", j, where), field);
    }
    if (id > INT32_MAX) {
      throw HttpError::bad_request(fmt::format("Token ID {} of {} is too large", id, where), field);
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// OpenAI's `input`: str | [str] | [int] | [[int]].
std::vector<Prompt> parse_openai_input(const json& body) {
  const char* field = "input";
  if (!body.contains("input") || body["input"].is_null()) {
    throw HttpError::bad_request(
        "input is required: a string, a list of strings, a list of token "
        "ids or a list of lists of token ids",
        field);
  }
  const json& input = body["input"];
  std::vector<Prompt> out;
  if (input.is_string()) {
    const std::string s = input.get<std::string>();
    if (s.empty()) throw HttpError::bad_request("Input cannot be empty", field);
    if (blank(s)) throw HttpError::bad_request("Input cannot be empty or whitespace only", field);
    out.push_back({s, {}});
    return out;
  }
  if (!input.is_array()) {
    throw HttpError::bad_request(
        "input must be a string, a list of strings, a list of token ids "
        "or a list of lists of token ids",
        field);
  }
  if (input.empty()) throw HttpError::bad_request("Input cannot be empty", field);
  const json& first = input.front();
  if (first.is_string()) {
    for (size_t i = 0; i < input.size(); ++i) {
      if (!input[i].is_string()) {
        throw HttpError::bad_request("All items in input list must be strings", field);
      }
      const std::string s = input[i].get<std::string>();
      if (blank(s)) {
        throw HttpError::bad_request(
            fmt::format("Input at index {} cannot be empty or whitespace only", i), field);
      }
      out.push_back({s, {}});
    }
    return out;
  }
  if (first.is_number()) {
    out.push_back({std::nullopt, token_ids(input, "input", field)});
    return out;
  }
  if (first.is_array()) {
    for (size_t i = 0; i < input.size(); ++i) {
      if (!input[i].is_array()) {
        throw HttpError::bad_request("All items in input list must be lists of token ids", field);
      }
      if (input[i].empty()) {
        throw HttpError::bad_request(fmt::format("Input at index {} cannot be empty", i), field);
      }
      out.push_back(
          {std::nullopt, token_ids(input[i], fmt::format("input at index {}", i), field)});
    }
    return out;
  }
  throw HttpError::bad_request(
      "input must be a string, a list of strings, a list of token ids or "
      "a list of lists of token ids (multimodal inputs are not supported)",
      field);
}

// /encode's `text` (str | [str] | [[str, str]] pairs) or `input_ids` ([int] | [[int]]); sets
// *is_batch.
std::vector<Prompt> parse_encode_input(const json& body, bool* is_batch) {
  const bool has_text = body.contains("text") && !body["text"].is_null();
  const bool has_ids = body.contains("input_ids") && !body["input_ids"].is_null();
  for (const char* f : {"image_data", "video_data", "audio_data", "lora_path"}) {
    if (body.contains(f) && !body[f].is_null()) {
      throw HttpError::bad_request(fmt::format("{} is not supported by this server", f), f);
    }
  }
  if (has_text && has_ids) {
    throw HttpError::bad_request("text and input_ids cannot be provided at the same time", "text");
  }
  if (!has_text && !has_ids) {
    throw HttpError::bad_request("Either text or input_ids should be provided.", "text");
  }
  std::vector<Prompt> out;
  if (has_text) {
    const json& t = body["text"];
    auto one = [&](const json& v, const std::string& where) {
      if (v.is_array()) {
        if (v.size() != 2 || !v[0].is_string() || !v[1].is_string()) {
          throw HttpError::bad_request(
              fmt::format("{} must be a string or a [text, text] pair", where), "text");
        }
        const std::string a = v[0].get<std::string>(), b = v[1].get<std::string>();
        if (a.empty() || b.empty()) {
          throw HttpError::bad_request(fmt::format("{}: pair texts cannot be empty", where),
                                       "text");
        }
        out.push_back({a, {}, b});
        return;
      }
      if (!v.is_string()) {
        throw HttpError::bad_request(fmt::format("{} must be a string", where), "text");
      }
      const std::string s = v.get<std::string>();
      if (s.empty()) throw HttpError::bad_request(fmt::format("{} cannot be empty", where), "text");
      out.push_back({s, {}});
    };
    *is_batch = t.is_array();
    if (!t.is_array()) {
      one(t, "Input");
    } else {
      if (t.empty()) throw HttpError::bad_request("Input cannot be empty", "text");
      for (size_t i = 0; i < t.size(); ++i) one(t[i], fmt::format("Input at index {}", i));
    }
    return out;
  }
  const json& ids = body["input_ids"];
  if (!ids.is_array()) {
    throw HttpError::bad_request("input_ids must be a list of token ids or a list of lists",
                                 "input_ids");
  }
  if (ids.empty()) throw HttpError::bad_request("Input cannot be empty", "input_ids");
  *is_batch = ids.front().is_array();
  if (!*is_batch) {
    out.push_back({std::nullopt, token_ids(ids, "input_ids", "input_ids")});
    return out;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ids[i].is_array()) {
      throw HttpError::bad_request("input_ids must be a list of lists of token ids", "input_ids");
    }
    if (ids[i].empty()) {
      throw HttpError::bad_request(fmt::format("Input at index {} cannot be empty", i),
                                   "input_ids");
    }
    out.push_back(
        {std::nullopt, token_ids(ids[i], fmt::format("input_ids at index {}", i), "input_ids")});
  }
  return out;
}

// `dimensions`: an integer (0 when absent); the engine checks it against the model.
int64_t parse_dimensions(const json& body) {
  if (!body.contains("dimensions") || body["dimensions"].is_null()) return 0;
  const json& d = body["dimensions"];
  if (!d.is_number_integer()) {
    throw HttpError::bad_request("dimensions must be an integer", "dimensions");
  }
  const int64_t want = d.get<int64_t>();
  if (want < 1) throw HttpError::bad_request("Requested dimensions must be greater than 0", "dimensions");
  return want;
}

// Tokenizes and checks the prompts, then runs them as one batch.
std::vector<EmbedOutput> embed(ServerState& state, std::vector<Prompt> prompts,
                               std::vector<std::string> rids, const char* field,
                               int64_t dimensions) {
  std::vector<EmbedItem> items(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    Prompt& p = prompts[i];
    if (p.pair) {
      if (state.facts.model_kind != kScoreKind) {
        throw HttpError::bad_request(
            fmt::format("text pairs need a score (cross-encoder) model; this server serves a {} "
                        "model",
                        state.facts.model_kind),
            field);
      }
      state.require_tokenizer(field);
      try {
        auto pair = state.tokenizer.encode_pair(*p.text, *p.pair, state.facts.context_length - 1);
        items[i].input_ids = std::move(pair.ids);
        items[i].token_types = std::move(pair.type_ids);
      } catch (const std::invalid_argument& e) {
        throw HttpError::bad_request(fmt::format("pair at index {} does not fit the context "
                                                 "length ({} tokens): {}",
                                                 i, state.facts.context_length, e.what()),
                                     field);
      }
    } else if (p.text) {
      items[i].input_ids = state.prompt_ids(*p.text, true, field);
    } else {
      items[i].input_ids = std::move(p.ids);
      check_token_ids(state, items[i].input_ids, field);
      state.check_prompt_length(items[i].input_ids, field);
    }
    items[i].rid = i < rids.size() ? rids[i] : make_request_id();
    items[i].dimensions = dimensions;
  }
  return state.backend.embed(std::move(items));
}

// Little-endian float32 bytes, base64 (OpenAI's encoding_format "base64").
std::string base64_floats(const std::vector<float>& v) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());  // the host is little-endian (x86, arm64)
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    const auto b1 = i + 1 < bytes.size() ? static_cast<unsigned char>(bytes[i + 1]) : 0u;
    const auto b2 = i + 2 < bytes.size() ? static_cast<unsigned char>(bytes[i + 2]) : 0u;
    const uint32_t n = (static_cast<uint32_t>(b0) << 16) | (b1 << 8) | b2;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

void handle_openai_embeddings(ServerState& state, const httplib::Request& req,
                              httplib::Response& res) {
  const json body = parse_body(req);
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  state.check_admission();
  ServerState::InFlight in_flight(state);
  if (state.facts.is_generation) refuse_generation("/v1/embeddings");
  require_model_kind(state, "/v1/embeddings", {kEmbeddingKind});
  std::string model = "default";
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) throw HttpError::bad_request("model must be a string", "model");
    model = body["model"].get<std::string>();
  }
  state.require_model(model);
  std::string format = "float";
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    const json& f = body["encoding_format"];
    if (!f.is_string() || (f != "float" && f != "base64")) {
      throw HttpError::bad_request("encoding_format must be \"float\" or \"base64\"",
                                   "encoding_format");
    }
    format = f.get<std::string>();
  }
  const int64_t dimensions = parse_dimensions(body);
  std::vector<Prompt> prompts = parse_openai_input(body);
  std::vector<std::string> rids;
  if (body.contains("rid") && body["rid"].is_string()) {
    const std::string rid = body["rid"].get<std::string>();
    for (size_t i = 0; i < prompts.size(); ++i) {
      rids.push_back(prompts.size() == 1 ? rid : fmt::format("{}_{}", rid, i));
    }
  }
  const std::vector<EmbedOutput> outs =
      embed(state, std::move(prompts), std::move(rids), "input", dimensions);
  json data = json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    json item = {{"object", "embedding"}, {"index", i}};
    if (format == "base64")
      item["embedding"] = base64_floats(outs[i].embedding);
    else
      item["embedding"] = outs[i].embedding;
    data.push_back(std::move(item));
    tokens += outs[i].prompt_tokens;
  }
  send_json(res, {{"object", "list"},
                  {"data", std::move(data)},
                  {"model", state.facts.model_path},
                  {"usage",
                   {{"prompt_tokens", tokens},
                    {"total_tokens", tokens},
                    {"completion_tokens", 0},
                    {"prompt_tokens_details", nullptr}}}});
}

}  // namespace

json encode_response(ServerState& state, const json& body, const char* route) {
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  state.check_admission();
  ServerState::InFlight in_flight(state);
  if (state.facts.is_generation) refuse_generation(route);
  const int64_t dimensions = parse_dimensions(body);
  bool is_batch = false;
  std::vector<Prompt> prompts = parse_encode_input(body, &is_batch);
  std::vector<std::string> rids;
  if (body.contains("rid") && !body["rid"].is_null()) {
    const json& rid = body["rid"];
    if (rid.is_string()) {
      for (size_t i = 0; i < prompts.size(); ++i) {
        rids.push_back(!is_batch ? rid.get<std::string>()
                                 : fmt::format("{}_{}", rid.get<std::string>(), i));
      }
    } else if (rid.is_array() && rid.size() == prompts.size()) {
      for (const auto& r : rid) {
        if (!r.is_string()) throw HttpError::bad_request("rid must be a string or a list", "rid");
        rids.push_back(r.get<std::string>());
      }
    } else {
      throw HttpError::bad_request("rid must be a string, or a list with one rid per input", "rid");
    }
  }
  const char* field = body.contains("text") && !body["text"].is_null() ? "text" : "input_ids";
  const std::vector<EmbedOutput> outs =
      embed(state, std::move(prompts), std::move(rids), field, dimensions);
  const std::string weight_version = state.backend.stats().weight_version;
  json arr = json::array();
  for (const EmbedOutput& o : outs) {
    arr.push_back({{"embedding", o.embedding},
                   {"meta_info",
                    {{"id", o.id},
                     {"finish_reason", {{"type", "length"}, {"length", 0}}},
                     {"prompt_tokens", o.prompt_tokens},
                     {"weight_version", weight_version},
                     {"e2e_latency", o.e2e_latency}}}});
  }
  return is_batch ? arr : arr.at(0);
}

namespace {

void handle_encode(ServerState& state, const httplib::Request& req, httplib::Response& res) {
  send_json(res, encode_response(state, parse_body(req)));
}

}  // namespace

void register_embedding_routes(httplib::Server& svr, ServerState& state) {
  svr.Post("/v1/embeddings", guarded(state, [&state](const auto& req, auto& res) {
             handle_openai_embeddings(state, req, res);
           }));
  auto encode =
      guarded(state, [&state](const auto& req, auto& res) { handle_encode(state, req, res); });
  svr.Post("/encode", encode);
  svr.Put("/encode", encode);
}

}  // namespace sable::server
