// Thread count of the CPU ops (see cpu_threads.h): physical-core detection and OpenBLAS pinning.
#include "core/ops/cpu/cpu_threads.h"

#include <dlfcn.h>
#include <omp.h>
#include <sched.h>

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace sable::ops::cpu {
namespace {

std::atomic<int> g_threads{0};
std::atomic<bool> g_int8{false};

int read_int(const std::string& path) {
  std::ifstream in(path);
  int v = -1;
  if (!(in >> v)) return -1;
  return v;
}

// OpenBLAS may be absent (a reference BLAS) or built without the call: look it up at run time.
void blas_single_thread() {
  using SetThreads = void (*)(int);
  if (auto* f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(1);
}

}  // namespace

int physical_cores() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) != 0) return 1;
  std::set<std::pair<int, int>> cores;
  int cpus = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &mask)) continue;
    ++cpus;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    const int pkg = read_int(base + "physical_package_id"), core = read_int(base + "core_id");
    if (pkg < 0 || core < 0) return cpus > 0 ? CPU_COUNT(&mask) : 1;
    cores.emplace(pkg, core);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

void set_threads(int n) {
  g_threads.store(n > 0 ? n : physical_cores());
  blas_single_thread();
}

std::string blas_name() {
  using CoreName = char* (*)();
  auto* f = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* core = f != nullptr ? f() : nullptr;
  return core != nullptr ? std::string("OpenBLAS ") + core : "a reference BLAS";
}

std::string blas_core_override() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (blas_name() != "OpenBLAS Prescott" || !__builtin_cpu_supports("avx2")) return {};
  return __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell";
#else
  return {};
#endif
}

int threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {  // first use without set_threads: the default
    set_threads(0);
    n = g_threads.load();
  }
  return n;
}

}  // namespace sable::ops::cpu

namespace sable::ops::cpu {

void adopt_threads() {
  thread_local int adopted = 0;
  const int n = threads();
  if (adopted != n) omp_set_num_threads(n);
  adopted = n;
}

}  // namespace sable::ops::cpu

namespace sable::ops::cpu {

void set_int8_activations(bool on) { g_int8.store(on); }
bool int8_activations() { return g_int8.load(std::memory_order_relaxed); }

}  // namespace sable::ops::cpu
