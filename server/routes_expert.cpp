// SGLang's expert distribution routes: /start_expert_distribution_record,
// /stop_expert_distribution_record and /dump_expert_distribution_record (GET or POST). The dump
// returns the per-layer, per-expert selection counts inline as JSON and also writes them, as
// SGLang's recorder does, to a CSV (layer_id,expert_id,count) under
// $SABLE_EXPERT_DISTRIBUTION_RECORDER_DIR (default /tmp). With expert_distribution_recorder_mode
// empty the backend refuses and the route answers 400 naming the option.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/util/log.h"
#include "server/native_calls.h"
#include "server/route_util.h"

namespace sable::server {

namespace {

using nlohmann::json;

std::filesystem::path dump_dir() {
  const char* dir = std::getenv("SABLE_EXPERT_DISTRIBUTION_RECORDER_DIR");
  return dir != nullptr && *dir != '\0' ? std::filesystem::path(dir) : std::filesystem::path("/tmp");
}

// Writes the CSV; returns its path, or throws std::runtime_error naming the path.
std::filesystem::path write_csv(const ExpertDistributionDump& d) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  const std::filesystem::path dir = dump_dir();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path path =
      dir / fmt::format("expert_distribution_rank0_timestamp{}.csv", ms);
  std::ofstream out(path);
  out << "layer_id,expert_id,count\n";
  for (size_t l = 0; l < d.counts.size(); ++l)
    for (size_t e = 0; e < d.counts[l].size(); ++e)
      out << l << ',' << e << ',' << d.counts[l][e] << '\n';
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
  return path;
}

}  // namespace

json expert_distribution_json(const ExpertDistributionDump& d) {
  json body = {{"success", true},
               {"message", "Dump expert distribution record."},
               {"mode", d.mode},
               {"recording", d.recording},
               {"layers", d.num_layers},
               {"experts", d.num_experts},
               {"counts", d.counts},
               {"total", d.total},
               {"path", nullptr}};
  try {
    body["path"] = write_csv(d).string();
  } catch (const std::exception& e) {
    // The counts were taken (and reset): still return them, saying why no file was written.
    log::warn("dump_expert_distribution_record: {}", e.what());
    body["file_error"] = e.what();
  }
  return body;
}


void register_expert_routes(httplib::Server& svr, ServerState& state) {
  auto start = guarded(state, [&state](const auto&, auto& res) {
    state.backend.start_expert_distribution_record();
    send_json(res, {{"success", true}, {"message", "Start recording the expert distribution."}});
  });
  svr.Get("/start_expert_distribution_record", start);
  svr.Post("/start_expert_distribution_record", start);

  auto stop = guarded(state, [&state](const auto&, auto& res) {
    state.backend.stop_expert_distribution_record();
    send_json(res, {{"success", true}, {"message", "Stop recording the expert distribution."}});
  });
  svr.Get("/stop_expert_distribution_record", stop);
  svr.Post("/stop_expert_distribution_record", stop);

  auto dump = guarded(state, [&state](const auto&, auto& res) {
    send_json(res, expert_distribution_json(state.backend.dump_expert_distribution_record()));
  });
  svr.Get("/dump_expert_distribution_record", dump);
  svr.Post("/dump_expert_distribution_record", dump);
}

}  // namespace sable::server
