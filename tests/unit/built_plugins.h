// The plugins this tree built (SABLE_PLUGIN_DIR), discovered once per test binary and without the
// environment's plugin path: what the golden, LoRA, tensor-parallel and expert tests load models
// and attention backends from. Thread-safe (a function-local static).
#pragma once

#include "core/plugin/registry.h"

namespace sable::test_support {

inline const plugin::Registry& registry() {
  static const auto reg = [] {
    plugin::DiscoveryOptions opt;
    opt.dirs = {SABLE_PLUGIN_DIR};
    opt.include_env = false;
    return plugin::Registry::discover(opt);
  }();
  return *reg;
}

}  // namespace sable::test_support
