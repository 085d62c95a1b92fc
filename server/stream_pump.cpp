// The loop behind every generation route (see stream_pump.h).
#include "server/stream_pump.h"

#include <chrono>

#include "server/metrics.h"

namespace sable::server {

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  Clock::time_point start = Clock::now();
  Clock::time_point last;
  bool first_seen = false;
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void record(Timing& t, const Delta& d, Metrics& metrics) {
  const auto now = Clock::now();
  if (!d.token_ids.empty()) {
    if (!t.first_seen) {
      metrics.observe_ttft(seconds(now - t.start));
      t.first_seen = true;
      // Tokens that arrived together with the first share its moment: no gap to report.
    } else {
      const double gap = seconds(now - t.last) / static_cast<double>(d.token_ids.size());
      for (size_t i = 0; i < d.token_ids.size(); ++i) metrics.observe_itl(gap);
    }
    t.last = now;
  }
  if (d.finish) {
    metrics.observe_e2e(seconds(now - t.start));
    metrics.count_request(d.finish->type == Finish::Type::kAbort);
  }
}

}  // namespace

bool pump_generations(std::vector<std::unique_ptr<Generation>>& gens, Metrics& metrics,
                      const std::function<bool(size_t, const Delta&)>& on_delta,
                      const std::function<bool()>& alive) {
  std::vector<Timing> timing(gens.size());
  constexpr auto kSingleWait = std::chrono::milliseconds(200);
  constexpr auto kBatchWait = std::chrono::milliseconds(2);
  for (;;) {
    bool all_done = true;
    bool progressed = false;
    for (size_t i = 0; i < gens.size(); ++i) {
      Generation& g = *gens[i];
      if (g.done()) continue;
      all_done = false;
      // One generation: block on it. Several: poll each briefly so that none starves.
      const auto wait = gens.size() == 1 ? kSingleWait : (progressed ? std::chrono::milliseconds(0)
                                                                     : kBatchWait);
      while (auto d = g.next(wait)) {
        progressed = true;
        record(timing[i], *d, metrics);
        if (!on_delta(i, *d)) return false;
        if (d->finish || gens.size() > 1) break;
      }
    }
    if (all_done) return true;
    if (!progressed && !alive()) return false;
  }
}

}  // namespace sable::server
