// What the GPU suites of the "flash" attention plugin share: the plugin's API from the built
// shared object, and the environment switch flash_plugin.cpp reads at create.
#pragma once

#include <dlfcn.h>

#include <cstdlib>

#include "tests/gpu/gpu_test_util.h"

namespace sable::gputest {

inline const SableAttentionApi* load_flash() {
  static void* lib = dlopen(SABLE_PLUGIN_DIR "/sable-attention-flash.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return nullptr;
  auto entry = reinterpret_cast<SablePluginEntryFn>(dlsym(lib, SABLE_PLUGIN_ENTRY_SYMBOL));
  const SablePlugin* p = entry ? entry(SABLE_ABI_MAJOR) : nullptr;
  return p ? static_cast<const SableAttentionApi*>(p->api) : nullptr;
}

// An environment variable set for a scope (flash_plugin.cpp reads SABLE_FLASH_DECODE_KERNEL and
// SABLE_CASCADE, 0: off, when the backend is created).
struct ScopedEnv {
  ScopedEnv(const char* name, bool on) : name_(name) { setenv(name, on ? "1" : "0", 1); }
  ~ScopedEnv() { unsetenv(name_); }
  const char* name_;
};

}  // namespace sable::gputest
