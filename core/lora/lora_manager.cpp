// The adapter registry and the slot pool (see lora_manager.h).
#include "core/lora/lora_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <set>
#include <stdexcept>

#include "core/model_source/resolve_model.h"
#include "core/runner/device_memory.h"
#include "core/util/log.h"
#include "core/weights/dtype_convert.h"

namespace sable::lora {

constexpr int32_t kModules = SABLE_LORA_MODULE_COUNT;

struct LoraManager::Pool {
  int64_t k = 0, n = 0;
  void* a = nullptr;  // [S, R, K]
  void* b = nullptr;  // [S, N, R]
};

namespace {

size_t dtype_bytes(int32_t dtype) { return dtype == SABLE_DTYPE_F32 ? 4 : 2; }

// Host fp32 rows into `count` elements of the pool's dtype at element offset `offset` of `dst`.
void upload(runner::DeviceMemory& memory, int32_t dtype, void* dst, int64_t offset,
            const float* src, int64_t count) {
  const size_t es = dtype_bytes(dtype);
  std::vector<uint8_t> staged(static_cast<size_t>(count) * es);
  if (!weights::convert(SABLE_DTYPE_F32, src, dtype, staged.data(), static_cast<size_t>(count)))
    throw std::invalid_argument(fmt::format("LoRA pool: unsupported dtype {}", dtype));
  memory.upload(static_cast<uint8_t*>(dst) + offset * static_cast<int64_t>(es), staged.data(),
                staged.size());
}

}  // namespace

namespace {
int32_t rank_stride(int32_t max_rank) {
  return (std::max(max_rank, 1) + ops::kLoraRankAlign - 1) / ops::kLoraRankAlign *
         ops::kLoraRankAlign;
}
}  // namespace

LoraManager::LoraManager(const LoraOptions& options, BaseModel base, runner::DeviceMemory& memory)
    : options_(options),
      base_(std::move(base)),
      memory_(memory),
      block_(base_.num_layers, std::max(options.max_loras_per_batch, 1),
            std::max(options.max_batch_tokens, 1)) {
  if (options_.max_loras_per_batch <= 0)
    throw std::invalid_argument(fmt::format("max_loras_per_batch must be positive, got {}",
                                            options_.max_loras_per_batch));
  if (options_.max_lora_rank <= 0)
    throw std::invalid_argument(
        fmt::format("max_lora_rank must be positive, got {}", options_.max_lora_rank));
  if (options_.compute_dtype != SABLE_DTYPE_F32 && options_.compute_dtype != SABLE_DTYPE_BF16)
    throw std::invalid_argument("LoRA pool: the compute dtype must be F32 or BF16");
  const auto slots = static_cast<size_t>(options_.max_loras_per_batch);
  pools_.resize(static_cast<size_t>(base_.num_layers) * kModules);
  weights_.resize(pools_.size());
  slot_adapter_.assign(slots, 0);
  slot_used_.assign(slots, 0);
  slot_rank_.assign(slots * kModules, 0);
  rank_stride_ = rank_stride(options_.max_lora_rank);
  if (!memory_.host_accessible()) step_device_ = memory_.allocate(block_.capacity_bytes());
}

LoraManager::~LoraManager() = default;

AdapterInfo LoraManager::load(const std::string& name, const std::string& path) {
  static const std::regex kName(R"([A-Za-z0-9_.\-/]+)");
  if (!std::regex_match(name, kName))
    throw std::invalid_argument(fmt::format(
        "LoRA adapter name '{}' must be letters, digits and _ . - / only", name));
  if (has(name))
    throw std::invalid_argument(fmt::format(
        "LoRA adapter '{}' is already loaded; unload it first or pick another name", name));
  model_source::ModelSource src;
  try {
    model_source::ResolveOptions ro;
    ro.want = model_source::Want::kLoraAdapter;
    src = model_source::resolve_model(path, ro);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("LoRA adapter '{}': {}", name, e.what()));
  }
  auto adapter = std::make_shared<LoraAdapter>(
      load_peft_adapter(name, src.path, base_, options_.max_lora_rank));
  adapter->path = path;
  std::lock_guard<std::mutex> lock(mutex_);
  if (by_name_.count(name) != 0)  // loaded meanwhile by another thread
    throw std::invalid_argument(fmt::format("LoRA adapter '{}' is already loaded", name));
  const int32_t id = next_id_++;
  by_name_[name] = Ref{id, adapter};
  by_id_[id] = adapter;
  log::info("LoRA adapter '{}' loaded from {}: rank {}, alpha {}{}, modules {}", name, path,
            adapter->rank, adapter->alpha, adapter->use_rslora ? " (rsLoRA)" : "",
            fmt::join(adapter->modules, ", "));
  return AdapterInfo{name,           path, id, adapter->rank, adapter->alpha, adapter->scaling,
                     adapter->use_rslora, adapter->modules};
}

void LoraManager::unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_name_.find(name);
  if (it == by_name_.end())
    throw std::invalid_argument(fmt::format("LoRA adapter '{}' is not loaded", name));
  // The registry holds two references (by name and by id); more are requests' holds.
  const long holders = it->second.adapter.use_count() - 2;
  if (holders > 0)
    throw std::invalid_argument(fmt::format(
        "LoRA adapter '{}' is in use by {} request(s); unload it when they have finished", name,
        holders));
  by_id_.erase(it->second.id);
  by_name_.erase(it);
  log::info("LoRA adapter '{}' unloaded", name);
}

LoraManager::Ref LoraManager::acquire(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    std::vector<std::string> names;
    for (const auto& [n, r] : by_name_) names.push_back(n);
    throw std::invalid_argument(fmt::format("unknown LoRA adapter '{}' (loaded: {})", name,
                                            names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
  }
  return it->second;
}

bool LoraManager::has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return by_name_.count(name) != 0;
}

std::vector<AdapterInfo> LoraManager::list() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<AdapterInfo> out;
  for (const auto& [name, r] : by_name_) {
    const LoraAdapter& a = *r.adapter;
    out.push_back({name, a.path, r.id, a.rank, a.alpha, a.scaling, a.use_rslora, a.modules});
  }
  return out;
}

LoraManager::Pool& LoraManager::pool(int32_t layer, int32_t module, int64_t k, int64_t n) {
  auto& p = pools_[static_cast<size_t>(layer) * kModules + static_cast<size_t>(module)];
  if (!p) {
    p = std::make_unique<Pool>();
    p->k = k;
    p->n = n;
    const size_t es = dtype_bytes(options_.compute_dtype);
    const auto per = static_cast<size_t>(options_.max_loras_per_batch) *
                     static_cast<size_t>(rank_stride_) * es;
    p->a = memory_.allocate(per * static_cast<size_t>(k));  // zeroed
    p->b = memory_.allocate(per * static_cast<size_t>(n));
    ops::LoraWeights& w = weights_[static_cast<size_t>(layer) * kModules + static_cast<size_t>(module)];
    w = {p->a, p->b, k, n};
  }
  return *p;
}

// Copies the adapter into `slot` of every pool it targets; zeroes the slot in the pools of a
// module it targets in other layers only (an earlier occupant may have left its weights there).
void LoraManager::install(int32_t slot, const LoraAdapter& adapter) {
  const int64_t r_max = rank_stride_, rank = adapter.rank;
  std::set<int32_t> modules;
  std::set<std::pair<int32_t, int32_t>> written;
  for (const LoraTarget& t : adapter.targets) {
    Pool& p = pool(t.layer, t.module, t.k, t.n);
    // A: rows [slot * R, slot * R + rank) of [S * R, K]; B: each of the N rows of slot s has R
    // columns, the first `rank` written (a pool of larger rank keeps zeros in the rest).
    upload(memory_, options_.compute_dtype, p.a, slot * r_max * t.k, t.a.data(), rank * t.k);
    std::vector<float> b(static_cast<size_t>(t.n * r_max), 0.0f);
    for (int64_t row = 0; row < t.n; ++row)
      std::copy_n(t.b.data() + row * rank, rank, b.data() + row * r_max);
    upload(memory_, options_.compute_dtype, p.b, slot * t.n * r_max, b.data(), t.n * r_max);
    modules.insert(t.module);
    written.insert({t.layer, t.module});
  }
  for (int32_t m = 0; m < kModules; ++m) {
    slot_rank_[static_cast<size_t>(slot) * kModules + static_cast<size_t>(m)] =
        modules.count(m) ? adapter.rank : 0;
    if (!modules.count(m)) continue;
    for (int32_t l = 0; l < base_.num_layers; ++l) {
      const auto& p = pools_[static_cast<size_t>(l) * kModules + static_cast<size_t>(m)];
      if (!p || written.count({l, m})) continue;
      const std::vector<float> zeros(static_cast<size_t>(r_max * std::max(p->k, p->n)), 0.0f);
      upload(memory_, options_.compute_dtype, p->a, slot * r_max * p->k, zeros.data(), r_max * p->k);
      upload(memory_, options_.compute_dtype, p->b, slot * p->n * r_max, zeros.data(), p->n * r_max);
    }
  }
}

const ops::LoraBatch* LoraManager::prepare(std::span<const int32_t> seq_adapter,
                                           std::span<const int32_t> seq_tokens) {
  ++step_;
  std::vector<int32_t> wanted;
  for (int32_t id : seq_adapter)
    if (id != 0 && std::find(wanted.begin(), wanted.end(), id) == wanted.end()) wanted.push_back(id);
  if (wanted.empty()) return nullptr;
  const auto slots = static_cast<int32_t>(slot_adapter_.size());
  if (static_cast<int32_t>(wanted.size()) > slots)
    throw std::invalid_argument(fmt::format("a batch uses {} LoRA adapters but max_loras_per_batch "
                                            "is {}",
                                            wanted.size(), slots));
  std::map<int32_t, int32_t> slot_of;
  bool installed = false;
  for (int32_t id : wanted) {
    const auto it = std::find(slot_adapter_.begin(), slot_adapter_.end(), id);
    if (it != slot_adapter_.end()) slot_of[id] = static_cast<int32_t>(it - slot_adapter_.begin());
  }
  for (int32_t id : wanted) {
    if (slot_of.count(id)) continue;
    std::shared_ptr<const LoraAdapter> adapter;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = by_id_.find(id);
      if (it == by_id_.end())
        throw std::invalid_argument(fmt::format("LoRA adapter id {} is not loaded", id));
      adapter = it->second;
    }
    // A free slot, else the least recently used one that this batch does not use.
    int32_t victim = -1;
    for (int32_t s = 0; s < slots; ++s) {
      bool needed = false;
      for (const auto& entry : slot_of) needed = needed || entry.second == s;
      if (needed) continue;
      if (slot_adapter_[static_cast<size_t>(s)] == 0) {
        victim = s;
        break;
      }
      if (victim < 0 || slot_used_[static_cast<size_t>(s)] < slot_used_[static_cast<size_t>(victim)])
        victim = s;
    }
    install(victim, *adapter);
    slot_adapter_[victim] = id;
    slot_of[id] = victim;
    installed = true;
  }
  // A pageable host-to-device copy may return before its DMA is done; a download waits for it,
  // before any kernel on the executor's stream reads the new weights.
  if (installed && step_device_ != nullptr) {
    unsigned char probe = 0;
    memory_.download(&probe, step_device_, 1);
  }
  // Segments: runs of consecutive sequences with the same slot.
  row_slot_.clear();
  seg_start_.assign(1, 0);
  seg_slot_.clear();
  for (size_t i = 0; i < seq_adapter.size(); ++i) {
    const int32_t slot = seq_adapter[i] == 0 ? -1 : slot_of.at(seq_adapter[i]);
    if (slot >= 0) slot_used_[static_cast<size_t>(slot)] = step_;
    const int32_t rows = seq_tokens[i];
    if (rows <= 0) continue;
    row_slot_.insert(row_slot_.end(), static_cast<size_t>(rows), slot);
    if (!seg_slot_.empty() && seg_slot_.back() == slot)
      seg_start_.back() += rows;
    else {
      seg_slot_.push_back(slot);
      seg_start_.push_back(seg_start_.back() + rows);
    }
  }
  if (static_cast<int64_t>(row_slot_.size()) > std::max(options_.max_batch_tokens, 1))
    throw std::invalid_argument(fmt::format("LoRA: {} rows exceed max_batch_tokens {}",
                                            row_slot_.size(), options_.max_batch_tokens));
  batch_ = ops::LoraBatch{};
  if (step_device_ != nullptr) {
    batch_.step_bytes = block_.fill(weights_, slot_rank_, row_slot_);
    batch_.step_host = block_.host();
    batch_.step_device = step_device_;
    batch_.device = block_.view(step_device_);
  }
  batch_.num_layers = base_.num_layers;
  batch_.num_slots = slots;
  batch_.max_rank = rank_stride_;
  batch_.dtype = options_.compute_dtype;
  batch_.weights = weights_.data();
  batch_.slot_rank = slot_rank_.data();
  batch_.num_segments = static_cast<int32_t>(seg_slot_.size());
  batch_.seg_start = seg_start_.data();
  batch_.seg_slot = seg_slot_.data();
  batch_.num_tokens = static_cast<int32_t>(row_slot_.size());
  return &batch_;
}

}  // namespace sable::lora
