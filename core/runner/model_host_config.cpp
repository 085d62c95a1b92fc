// The config_* functions of SableHostApi over HfConfig: absent key or JSON null -> NOT_FOUND,
// a value of another type -> INVALID_ARGUMENT with the ConfigError's message as the error detail.
#include <algorithm>
#include <cstring>
#include <exception>

#include "core/hf_config/hf_config.h"
#include "core/runner/model_host.h"

namespace sable::runner {
namespace {

ModelHost* self(SableHostHandle* h) {
  return ModelHost::from(h);
}

// Runs `get` (returning an optional); stores the value through `put` when present.
template <class Get, class Put>
SableStatus lookup(SableHostHandle* h, const char* key, Get get, Put put) {
  if (key == nullptr) {
    self(h)->set_error("config lookup with a NULL key");
    return SABLE_ERR_INVALID_ARGUMENT;
  }
  try {
    auto v = get(self(h)->config(), std::string_view(key));
    if (!v) return SABLE_ERR_NOT_FOUND;
    return put(*v);
  } catch (const std::exception& e) {
    self(h)->set_error(e.what());
    return SABLE_ERR_INVALID_ARGUMENT;
  }
}

int32_t c_config_has(SableHostHandle* h, const char* key) {
  try {
    return key != nullptr && self(h)->config().has(key) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

SableStatus c_config_int(SableHostHandle* h, const char* key, int64_t* out) {
  return lookup(
      h, key, [](const hf::HfConfig& c, std::string_view k) { return c.get_int(k); },
      [&](int64_t v) {
        *out = v;
        return SABLE_OK;
      });
}

SableStatus c_config_float(SableHostHandle* h, const char* key, double* out) {
  return lookup(
      h, key, [](const hf::HfConfig& c, std::string_view k) { return c.get_float(k); },
      [&](double v) {
        *out = v;
        return SABLE_OK;
      });
}

SableStatus c_config_bool(SableHostHandle* h, const char* key, int32_t* out) {
  return lookup(
      h, key, [](const hf::HfConfig& c, std::string_view k) { return c.get_bool(k); },
      [&](bool v) {
        *out = v ? 1 : 0;
        return SABLE_OK;
      });
}

SableStatus c_config_string(SableHostHandle* h, const char* key, char* buf, size_t cap,
                            size_t* len) {
  return lookup(
      h, key, [](const hf::HfConfig& c, std::string_view k) { return c.get_string(k); },
      [&](const std::string& v) {
        if (len != nullptr) *len = v.size();
        if (buf != nullptr && cap > 0) {
          const size_t n = std::min(v.size(), cap - 1);
          std::memcpy(buf, v.data(), n);
          buf[n] = '\0';
        }
        return SABLE_OK;
      });
}

SableStatus c_config_int_list(SableHostHandle* h, const char* key, int64_t* out, size_t cap,
                              size_t* count) {
  return lookup(
      h, key, [](const hf::HfConfig& c, std::string_view k) { return c.get_int_list(k); },
      [&](const std::vector<int64_t>& v) {
        if (count != nullptr) *count = v.size();
        if (out != nullptr) std::copy_n(v.begin(), std::min(v.size(), cap), out);
        return SABLE_OK;
      });
}

}  // namespace

void fill_config_api(SableHostApi& api) {
  api.config_has = &c_config_has;
  api.config_int = &c_config_int;
  api.config_float = &c_config_float;
  api.config_bool = &c_config_bool;
  api.config_string = &c_config_string;
  api.config_int_list = &c_config_int_list;
}

}  // namespace sable::runner
