// The routes of SGLang's HTTP server (sglang/srt/entrypoints/http_server.py, 0.5) that Sable does
// not implement. Each one answers 501 with an OpenAI-shaped error naming the feature, so that a
// client written for SGLang learns why instead of getting a 404 for a route it knows exists.
//
// This table is the one list of them; every other SGLang route is served by the route files
// (routes_native/info/openai/embeddings/expert/parsers.cpp). tests/e2e/test_sglang_routes.py reads the
// route list out of the installed sglang wheel and checks that Sable answers every entry.
#include <fmt/format.h>

#include <string_view>

#include "server/route_util.h"

namespace sable::server {

namespace {

struct MissingRoute {
  std::string_view methods;  // '|'-separated
  const char* path;          // httplib pattern: a {param} of SGLang's is ([^/]+)
  const char* feature;
};

constexpr MissingRoute kNotImplemented[] = {
    {"POST|PUT", "/set_internal_state", "changing server arguments at runtime"},
    {"POST", R"(/dumper/([^/]+))", "the tensor dumper"},
    {"POST", "/v1/classify", "classification models"},
    {"POST", "/add_external_corpus", "external corpora (n-gram speculative decoding)"},
    {"POST", "/remove_external_corpus", "external corpora (n-gram speculative decoding)"},
    {"GET", "/list_external_corpora", "external corpora (n-gram speculative decoding)"},
    {"POST", "/hicache/storage-backend/clear", "the hierarchical cache (HiCache)"},
    {"GET|PUT|DELETE", "/hicache/storage-backend", "the hierarchical cache (HiCache)"},
    {"GET", "/get_hicache_l3_cache_layout", "the hierarchical cache (HiCache)"},
    {"GET|POST", "/start_profile", "the profiler"},
    {"GET|POST", "/stop_profile", "the profiler"},
    {"GET|POST", "/set_trace_level", "request tracing"},
    {"GET|POST", "/freeze_gc", "freezing the Python garbage collector"},
    {"POST", "/init_weights_send_group_for_remote_instance", "weight transfer between instances"},
    {"POST", "/send_weights_to_remote_instance", "weight transfer between instances"},
    {"GET", "/get_remote_instance_transfer_engine_info", "weight transfer between instances"},
    {"GET", "/remote_instance_transfer_engine_info", "weight transfer between instances"},
    {"POST", "/init_weights_update_group", "weight updates over a distributed group"},
    {"POST", "/destroy_weights_update_group", "weight updates over a distributed group"},
    {"POST", "/update_weights_from_distributed", "weight updates over a distributed group"},
    {"POST", "/update_weights_from_tensor", "weight updates from tensors"},
    {"POST", "/update_weights_from_ipc", "weight updates over IPC"},
    {"POST", "/begin_weight_update", "staged weight updates"},
    {"POST", "/end_weight_update", "staged weight updates"},
    {"POST", "/update_weight_version", "setting the weight version at runtime"},
    {"GET|POST", "/get_weights_by_name", "reading weights by name"},
    {"GET|POST", "/release_memory_occupation", "releasing and resuming GPU memory"},
    {"GET|POST", "/resume_memory_occupation", "releasing and resuming GPU memory"},
    {"GET|POST", "/weights_checker", "the weights checker"},
    {"GET|POST", "/slow_down", "slowing down forward passes"},
    {"POST", "/pd_role_switch", "prefill/decode disaggregation"},
    {"POST", "/load_lora_adapter_from_tensors", "LoRA adapters from tensors"},
    {"GET|POST", "/open_session", "sessions"},
    {"GET|POST", "/close_session", "sessions"},
    {"GET|POST", "/configure_logging", "changing the logging configuration at runtime"},
    {"POST", "/pause_generation", "pausing and continuing generation"},
    {"POST", "/continue_generation", "pausing and continuing generation"},
    {"POST", "/v1/audio/transcriptions", "audio transcription"},
    {"POST", "/v1/score", "scoring"},
    {"POST", "/v1/decisions", "decisions by candidate scoring"},
    {"POST", "/v1/responses", "the Responses API"},
    {"GET", R"(/v1/responses/([^/]+))", "the Responses API"},
    {"POST", R"(/v1/responses/([^/]+)/cancel)", "the Responses API"},
    {"POST", "/api/chat", "the Ollama API"},
    {"POST", "/api/generate", "the Ollama API"},
    {"GET", "/api/tags", "the Ollama API"},
    {"POST", "/api/show", "the Ollama API"},
    {"POST", "/v1/messages", "the Anthropic Messages API"},
    {"POST", "/v1/messages/count_tokens", "the Anthropic Messages API"},
    {"POST", "/v1/systemone", "System One decisions"},
    {"POST", "/vertex_generate", "the Vertex AI API"},
    {"GET", "/v1/loads", "load reporting"},
    {"POST", "/scale_elastic_ep", "elastic expert parallelism"},
    {"GET", "/is_scaling_elastic_ep", "elastic expert parallelism"},
};

}  // namespace

void register_not_implemented_routes(httplib::Server& svr, ServerState& state) {
  for (const MissingRoute& route : kNotImplemented) {
    auto answer = guarded(state, [feature = route.feature](const auto& req, auto& res) {
      send_error(res, 501,
                 fmt::format("{} {}: {} is not implemented by Sable", req.method, req.path,
                             feature),
                 "", "not_implemented");
    });
    std::string_view rest = route.methods;
    while (!rest.empty()) {
      const size_t bar = rest.find('|');
      const std::string_view method = rest.substr(0, bar);
      rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
      if (method == "GET") svr.Get(route.path, answer);
      else if (method == "POST") svr.Post(route.path, answer);
      else if (method == "PUT") svr.Put(route.path, answer);
      else if (method == "DELETE") svr.Delete(route.path, answer);
    }
  }
}

}  // namespace sable::server
