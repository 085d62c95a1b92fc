// Score routes of a --is-embedding server with a sequence-classification model: SGLang's
// POST/PUT /classify (reward models; the request and answer of /encode, the scores in `embedding`)
// and POST/PUT /v1/rerank (cross-encoders).
//
// /v1/rerank: {query, documents, top_n?, return_documents=true, instruct?} -> a JSON array of
// {score, document?, index, meta_info}, best score first (ties keep document order), at most
// top_n. Each [query, document] pair is laid out by the tokenizer's pair template (XLM-R
// `<s> q </s></s> d </s>`, BERT `[CLS] q [SEP] d [SEP]` with token types) and scored in one batch;
// `score` is the first label's score. Truncation: a pair that is not shorter than the context
// (every input must be, as in SGLang) loses tokens from the end of its document; a query that
// leaves no room for any document token is a 400.
// `instruct` only concerns decoder rerankers (Qwen3-Reranker), which are not served here; a
// cross-encoder ignores it, as SGLang's does. Validation messages follow SGLang's.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/tokenizer/tokenizer.h"
#include "server/http_error.h"
#include "server/model_kind.h"
#include "server/native_calls.h"
#include "server/route_util.h"

namespace sable::server {

namespace {

using nlohmann::json;

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

struct RerankRequest {
  std::string query;
  std::vector<std::string> documents;
  std::optional<int64_t> top_n;
  bool return_documents = true;
};

RerankRequest parse_rerank(const json& body) {
  if (!body.is_object()) throw HttpError::bad_request("the request body must be a JSON object");
  RerankRequest r;
  if (!body.contains("query") || body["query"].is_null())
    throw HttpError::bad_request("query is required", "query");
  if (!body["query"].is_string())
    throw HttpError::bad_request("query must be a string (multimodal content is not supported)",
                                 "query");
  r.query = body["query"].get<std::string>();
  if (r.query.empty()) throw HttpError::bad_request("Query cannot be empty", "query");
  if (blank(r.query))
    throw HttpError::bad_request("Query cannot be empty or whitespace only", "query");
  if (!body.contains("documents") || body["documents"].is_null())
    throw HttpError::bad_request("documents is required", "documents");
  const json& docs = body["documents"];
  if (!docs.is_array()) throw HttpError::bad_request("documents must be a list", "documents");
  if (docs.empty()) throw HttpError::bad_request("Documents cannot be empty", "documents");
  for (const json& d : docs) {
    if (!d.is_string() || d.get<std::string>().empty())
      throw HttpError::bad_request("Each document must be a non-empty string", "documents");
    if (blank(d.get<std::string>()))
      throw HttpError::bad_request("Each document cannot be empty or whitespace only",
                                   "documents");
    r.documents.push_back(d.get<std::string>());
  }
  if (body.contains("top_n") && !body["top_n"].is_null()) {
    if (!body["top_n"].is_number_integer())
      throw HttpError::bad_request("top_n must be an integer", "top_n");
    r.top_n = body["top_n"].get<int64_t>();
    if (*r.top_n < 1)
      throw HttpError::bad_request("Value error, parameter top_n should be larger than 0.",
                                   "top_n");
  }
  if (body.contains("return_documents") && !body["return_documents"].is_null()) {
    if (!body["return_documents"].is_boolean())
      throw HttpError::bad_request("return_documents must be a boolean", "return_documents");
    r.return_documents = body["return_documents"].get<bool>();
  }
  if (body.contains("instruct") && !body["instruct"].is_null() && !body["instruct"].is_string())
    throw HttpError::bad_request("instruct must be a string", "instruct");
  return r;
}

json rerank_response(ServerState& state, const json& body) {
  state.check_admission();
  ServerState::InFlight in_flight(state);
  require_model_kind(state, "/v1/rerank", {kScoreKind});
  const RerankRequest r = parse_rerank(body);
  state.require_tokenizer("query");
  std::vector<EmbedItem> items(r.documents.size());
  const std::string base = make_request_id();
  for (size_t i = 0; i < r.documents.size(); ++i) {
    try {
      // Inputs must be shorter than the context (SGLang's rule for every request).
      auto pair =
          state.tokenizer.encode_pair(r.query, r.documents[i], state.facts.context_length - 1);
      items[i].input_ids = std::move(pair.ids);
      items[i].token_types = std::move(pair.type_ids);
    } catch (const std::invalid_argument& e) {
      throw HttpError::bad_request(
          fmt::format("the query does not fit the context length ({} tokens): {}",
                      state.facts.context_length, e.what()),
          "query");
    }
    items[i].rid = fmt::format("rerank-{}_{}", base, i);
  }
  const std::vector<EmbedOutput> outs = state.backend.embed(std::move(items));
  const std::string weight_version = state.backend.stats().weight_version;
  std::vector<size_t> order(outs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return outs[a].embedding.at(0) > outs[b].embedding.at(0);
  });
  if (r.top_n && static_cast<size_t>(*r.top_n) < order.size()) order.resize(*r.top_n);
  json arr = json::array();
  for (size_t i : order) {
    const EmbedOutput& o = outs[i];
    json item = {{"score", o.embedding.at(0)}};
    if (r.return_documents) item["document"] = r.documents[i];
    item["index"] = i;
    item["meta_info"] = {{"id", o.id},
                         {"finish_reason", {{"type", "length"}, {"length", 0}}},
                         {"prompt_tokens", o.prompt_tokens},
                         {"weight_version", weight_version},
                         {"e2e_latency", o.e2e_latency}};
    arr.push_back(std::move(item));
  }
  return arr;
}

}  // namespace

void register_scoring_routes(httplib::Server& svr, ServerState& state) {
  auto classify = guarded(state, [&state](const auto& req, auto& res) {
    send_json(res, encode_response(state, parse_body(req), "/classify"));
  });
  svr.Post("/classify", classify);
  svr.Put("/classify", classify);
  auto rerank = guarded(state, [&state](const auto& req, auto& res) {
    send_json(res, rerank_response(state, parse_body(req)));
  });
  svr.Post("/v1/rerank", rerank);
  svr.Put("/v1/rerank", rerank);
}

}  // namespace sable::server
