// Tensor parallelism for the model runner: ModelRunner::create with tp_size > 1 makes the group's
// communicator (in-process CPU ranks, or NCCL over one GPU per rank), starts every rank's runner
// through TpGroup, and keeps the smallest KV pool as the scheduler's bound; plus the rank failure
// accessors and the SABLE_FAULT_TP_RANK fault injection the failure tests use.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "core/comm/communicator.h"
#include "core/runner/model_runner_impl.h"
#include "core/util/log.h"

namespace sable::runner {

Fault fault_from_env() {
  Fault f;
  const char* v = std::getenv("SABLE_FAULT_TP_RANK");
  if (v == nullptr || *v == '\0') return f;
  const std::string s(v);
  const size_t colon = s.find(':');
  try {
    f.rank = std::stoi(s.substr(0, colon));
    const std::string when = colon == std::string::npos ? "" : s.substr(colon + 1);
    if (when == "start") {
      f.at_start = true;
    } else if (when.rfind("forward:", 0) == 0) {
      f.forward = std::stoll(when.substr(8));
    } else {
      throw std::invalid_argument(when);
    }
  } catch (const std::exception&) {
    throw std::invalid_argument(fmt::format(
        "SABLE_FAULT_TP_RANK '{}': expected R:start or R:forward:K", s));
  }
  return f;
}

std::unique_ptr<ModelRunner> ModelRunner::create(const RunnerOptions& options) {
  const int32_t n = options.tp_size;
  if (n < 1) throw std::invalid_argument(fmt::format("tp_size must be >= 1, got {}", n));
  if (n == 1) return create_rank(options, 0, 1, nullptr, nullptr);
  if (options.registry == nullptr)
    throw std::invalid_argument("RunnerOptions.registry is required (the loaded plugins)");
  const std::string device = resolve_device(options.device);
  std::unique_ptr<comm::CommGroup> group;
  if (device == "cuda") {
#ifdef SABLE_HAVE_CUDA
    const int32_t visible = cuda_device_count();
    if (options.device_index + n > visible)
      throw std::invalid_argument(fmt::format(
          "tp_size {} needs {} GPUs (cuda:{}..{}), but {} {} visible", n, n, options.device_index,
          options.device_index + n - 1, visible, visible == 1 ? "is" : "are"));
    std::vector<int32_t> devices;
    for (int32_t r = 0; r < n; ++r) devices.push_back(options.device_index + r);
    group = comm::make_nccl_group(devices);
#endif
  } else {
    group = comm::make_cpu_group(n);
  }
  log::info("tensor parallelism: {} ranks on {}, communicator '{}'", n,
            device == "cuda" ? "one GPU each" : "CPU threads of this process",
            group->endpoint(0).api->name);
  RunnerOptions rank_options = options;
  rank_options.device = device;
  TpGroup::Started started = TpGroup::start(
      std::move(group), [&](int32_t rank, comm::Endpoint ep) {
        return create_rank(rank_options, rank, n, ep.api, ep.handle);
      });
  // The scheduler's page accounting covers every rank: the smallest pool bounds it (CUDA sizes
  // each pool from its own device's free memory).
  Impl& r0 = *started.rank0->impl_;
  std::mutex m;
  started.group->run([&](ModelRunner& peer) {
    const int64_t pages = peer.num_pages();
    std::lock_guard<std::mutex> lock(m);
    r0.num_pages = std::min(r0.num_pages, pages);
  }, [] {});
  r0.tp = std::move(started.group);
  return std::move(started.rank0);
}

int32_t ModelRunner::tp_size() const { return impl_->tp_size; }

std::optional<std::string> ModelRunner::tp_failure() const {
  return impl_->tp ? impl_->tp->failure() : std::nullopt;
}

int64_t ModelRunner::weight_bytes() const { return impl_->host->bytes_held(); }

}  // namespace sable::runner
