// meta_info.hidden_states in SGLang's shape (declared in result_json.h). A file of its own so that
// the server's fuzz target, which compiles the server without the engine, can link it.
#include <nlohmann/json.hpp>

#include "core/engine/result_json.h"

namespace sable::engine {

using nlohmann::json;

json hidden_states_json(const std::vector<scheduler::HiddenStates>& states) {
  json out = json::array();
  for (const auto& h : states) {
    const auto width = static_cast<size_t>(h.hidden_size);
    auto row = [&](size_t r) {
      return std::vector<float>(h.values.begin() + static_cast<std::ptrdiff_t>(r * width),
                                h.values.begin() + static_cast<std::ptrdiff_t>((r + 1) * width));
    };
    if (!h.prefill) {
      out.push_back(row(0));
      continue;
    }
    json rows = json::array();
    for (size_t r = 0; r < static_cast<size_t>(h.rows); ++r) rows.push_back(row(r));
    out.push_back(std::move(rows));
  }
  return out;
}

json last_hidden_state_json(const std::vector<scheduler::HiddenStates>& states) {
  // SGLang: hidden_states[-1] if len(hidden_states) > 1 else [].
  if (states.size() <= 1) return json::array();
  const auto& h = states.back();
  const auto width = static_cast<size_t>(h.hidden_size);
  const size_t last = static_cast<size_t>(h.rows) - 1;
  if (h.prefill) {  // a later prefill chunk: SGLang's entry is the chunk's list of rows
    return hidden_states_json({h}).at(0);
  }
  return std::vector<float>(h.values.begin() + static_cast<std::ptrdiff_t>(last * width),
                            h.values.begin() + static_cast<std::ptrdiff_t>((last + 1) * width));
}

}  // namespace sable::engine
