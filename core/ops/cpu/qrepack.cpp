// The x16 weight layout (qrepack.h): packing, the fp32 reference read-back, and the registry of
// weights whose copy is made at their first batch-1 GEMM.
#include "core/ops/cpu/qrepack.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "core/ops/cpu/qblocks.h"
#include "core/ops/host_pages.h"

namespace sable::ops::cpu {
namespace {

// Bytes of one block's quants for 16 rows (Q4: 16 x 16, Q8_0: 16 x 32) and of its scales.
int64_t x16_qs_bytes(int32_t dtype) { return dtype == SABLE_DTYPE_Q8_0 ? 512 : 256; }
int64_t x16_group_bytes(int32_t dtype, int64_t nb) {
  return kX16 * nb * static_cast<int64_t>(sable_dtype_block_bytes(dtype));
}

// The copies' budget (qrepack.h) and what they take; kDefaultBudget: not chosen yet.
constexpr int64_t kDefaultBudget = -1;
std::atomic<int64_t> g_budget{kDefaultBudget};
std::atomic<int64_t> g_copied{0};

struct Entry {
  int32_t dtype;
  int64_t n, k;
  std::once_flag made;
  void* copy = nullptr;
  size_t bytes = 0;
  ~Entry() {
    free_populated(copy, bytes);
    g_copied -= static_cast<int64_t>(bytes);
  }
};

struct Registry {
  std::shared_mutex mu;
  std::map<const void*, std::unique_ptr<Entry>> entries;
  // The same entries as a sorted flat array, rebuilt when they change: a lookup per GEMM
  // through the map's nodes missed the caches after every step's weight stream (~1 % of a
  // SmolLM2 batch-1 step).
  std::vector<std::pair<const void*, Entry*>> index;
  void reindex() {
    index.clear();
    for (const auto& [w, e] : entries) index.emplace_back(w, e.get());
  }
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: weights may be freed at exit
  return *r;
}

// SABLE_CPU_X16_BUDGET_MB, else a quarter of /proc/meminfo's MemAvailable (0 where unknown:
// no copies rather than an unbounded second copy of the weights).
int64_t default_budget() {
  if (const char* v = std::getenv("SABLE_CPU_X16_BUDGET_MB")) {
    char* end = nullptr;
    const long long mb = std::strtoll(v, &end, 10);
    if (end != v && *end == '\0' && mb >= 0) return static_cast<int64_t>(mb) << 20;
  }
  int64_t avail_kb = 0;
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    long long kb = 0;
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::sscanf(line, "MemAvailable: %lld kB", &kb) == 1) {
        avail_kb = kb;
        break;
      }
    std::fclose(f);
  }
  return avail_kb * 1024 / 4;
}

// Takes `bytes` of the budget, or returns false when they do not fit.
bool reserve(int64_t bytes) {
  int64_t budget = g_budget.load();
  if (budget == kDefaultBudget) {
    int64_t expected = kDefaultBudget;
    g_budget.compare_exchange_strong(expected, default_budget());
    budget = g_budget.load();
  }
  int64_t used = g_copied.load();
  do {
    if (used + bytes > budget) return false;
  } while (!g_copied.compare_exchange_weak(used, used + bytes));
  return true;
}

}  // namespace

bool x16_dtype(int32_t dtype) {
  return dtype == SABLE_DTYPE_Q8_0 || dtype == SABLE_DTYPE_Q4_0 || dtype == SABLE_DTYPE_Q4_1;
}

int64_t x16_bytes(int32_t dtype, int64_t n, int64_t k) {
  return (n + kX16 - 1) / kX16 * x16_group_bytes(dtype, k / 32);
}

void x16_pack(int32_t dtype, const void* w, int64_t n, int64_t k, void* out) {
  const int64_t nb = k / 32, bb = static_cast<int64_t>(sable_dtype_block_bytes(dtype));
  const int64_t qb = x16_qs_bytes(dtype), gb = x16_group_bytes(dtype, nb);
  const bool q8 = dtype == SABLE_DTYPE_Q8_0, q41 = dtype == SABLE_DTYPE_Q4_1;
  const int quads = q8 ? 8 : 4, qs_at = q8 ? 2 : (q41 ? 4 : 2);
  auto* o = static_cast<uint8_t*>(out);
  std::memset(o, 0, static_cast<size_t>(x16_bytes(dtype, n, k)));
  for (int64_t row = 0; row < n; ++row) {
    uint8_t* g = o + (row / kX16) * gb;
    const int64_t r = row % kX16;
    auto* d = reinterpret_cast<uint16_t*>(g + nb * qb);
    uint16_t* mn = d + nb * kX16;
    for (int64_t i = 0; i < nb; ++i) {
      const auto* b = static_cast<const uint8_t*>(w) + row * nb * bb + i * bb;
      std::memcpy(&d[i * kX16 + r], b, 2);
      if (q41) std::memcpy(&mn[i * kX16 + r], b + 2, 2);
      for (int q = 0; q < quads; ++q) {  // 4 bytes at a time (Q8_0: each + 128, mod 256)
        uint32_t v;
        std::memcpy(&v, b + qs_at + 4 * q, 4);
        if (q8) v ^= 0x80808080u;
        std::memcpy(g + i * qb + q * 64 + r * 4, &v, 4);
      }
    }
  }
}

void x16_dequantize_row(int32_t dtype, const void* packed, int64_t k, int64_t row, float* out) {
  const int64_t nb = k / 32, qb = x16_qs_bytes(dtype);
  const auto* g = static_cast<const uint8_t*>(packed) + (row / kX16) * x16_group_bytes(dtype, nb);
  const int64_t r = row % kX16;
  const auto* d = reinterpret_cast<const uint16_t*>(g + nb * qb);
  const uint16_t* mn = d + nb * kX16;
  for (int64_t i = 0; i < nb; ++i) {
    const float dv = weights::f16_to_f32(d[i * kX16 + r]);
    float* o = out + 32 * i;
    if (dtype == SABLE_DTYPE_Q8_0) {
      for (int e = 0; e < 32; ++e) {
        const uint8_t u = g[i * qb + (e / 4) * 64 + r * 4 + e % 4];
        o[e] = dv * static_cast<float>(static_cast<int>(u) - 128);
      }
      continue;
    }
    const float mv = dtype == SABLE_DTYPE_Q4_1 ? weights::f16_to_f32(mn[i * kX16 + r]) : 0.0f;
    for (int e = 0; e < 16; ++e) {
      const uint8_t v = g[i * qb + (e / 4) * 64 + r * 4 + e % 4];
      const int lo = v & 0xF, hi = v >> 4;
      if (dtype == SABLE_DTYPE_Q4_0) {
        o[e] = dv * static_cast<float>(lo - 8);
        o[e + 16] = dv * static_cast<float>(hi - 8);
      } else {
        o[e] = dv * static_cast<float>(lo) + mv;
        o[e + 16] = dv * static_cast<float>(hi) + mv;
      }
    }
  }
}

void x16_register(int32_t dtype, const void* w, int64_t n, int64_t k) {
  // SABLE_CPU_X16=0: no copies, the batch-1 GEMV reads the row layout (an A/B switch).
  static const bool off = [] {
    const char* v = std::getenv("SABLE_CPU_X16");
    return v != nullptr && std::string_view(v) == "0";
  }();
  if (off || !x16_dtype(dtype) || w == nullptr || n <= 0 || k <= 0 || k % 32 != 0) return;
  Registry& reg = registry();
  auto e = std::make_unique<Entry>();
  e->dtype = dtype;
  e->n = n;
  e->k = k;
  std::unique_lock lock(reg.mu);
  reg.entries[w] = std::move(e);
  reg.reindex();
}

void x16_forget(const void* p, size_t bytes) {
  Registry& reg = registry();
  const auto* b = static_cast<const char*>(p);
  std::unique_lock lock(reg.mu);
  reg.entries.erase(reg.entries.lower_bound(b), reg.entries.lower_bound(b + bytes));
  reg.reindex();
}

const void* x16_copy(int32_t dtype, const void* w, int64_t n, int64_t k) {
  Registry& reg = registry();
  std::shared_lock lock(reg.mu);
  const auto it = std::lower_bound(reg.index.begin(), reg.index.end(), w,
                                   [](const auto& a, const void* b) { return a.first < b; });
  if (it == reg.index.end() || it->first != w) return nullptr;
  Entry& e = *it->second;
  if (e.dtype != dtype || e.n != n || e.k != k) return nullptr;
  std::call_once(e.made, [&] {
    const auto bytes = static_cast<size_t>(x16_bytes(dtype, n, k));
    if (!reserve(static_cast<int64_t>(bytes))) return;  // over the budget: the row layout serves
    void* p = allocate_populated(bytes);
    if (p == nullptr) {
      g_copied -= static_cast<int64_t>(bytes);
      return;
    }
    x16_pack(dtype, w, n, k, p);
    e.bytes = bytes;
    e.copy = p;
  });
  return e.copy;
}

void x16_set_budget(int64_t bytes) { g_budget = bytes < 0 ? kDefaultBudget : bytes; }

int64_t x16_copied_bytes() { return g_copied.load(); }

}  // namespace sable::ops::cpu
