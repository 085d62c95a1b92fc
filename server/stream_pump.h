// Drives a request's generations (one, a batch, or n samples) until each has finished, handing
// every delta to a callback in arrival order, and records the latency metrics (time to first
// token, inter-token latency, end-to-end) as the client sees them.
//
// Used by every generation route, streaming or not. Runs on the calling handler thread; the
// generations are destroyed by the caller (which aborts any that did not finish).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "server/backend.h"

namespace sable::server {

class Metrics;

// on_delta(index, delta) returns false to stop early (the client went away). alive() is polled
// while nothing arrives. Returns true when every generation finished.
bool pump_generations(std::vector<std::unique_ptr<Generation>>& generations, Metrics& metrics,
                      const std::function<bool(size_t, const Delta&)>& on_delta,
                      const std::function<bool()>& alive);

}  // namespace sable::server
