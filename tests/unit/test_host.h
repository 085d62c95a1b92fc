// A fake SableHostApi for unit tests that drive plugins directly (attention backends, samplers,
// grammar engines, simple models): it records log lines and error messages so a test can assert
// on them. Config and weight functions are absent (NULL) unless a test fills them in.
//
//   sable::test::FakeHost host;                 // host.api(), host.handle()
//   plugin_api->create(host.api(), host.handle(), ...);
//   EXPECT_THAT(host.last_error(), HasSubstr("page"));
//
// Thread-safety: log/set_error lock a mutex, as the real host's are thread-safe.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "sable/sable.h"

namespace sable::test {

class FakeHost {
 public:
  explicit FakeHost(const SableOps* ops = nullptr, int32_t device_type = SABLE_DEVICE_CPU) {
    api_.struct_size = sizeof(SableHostApi);
    api_.abi_major = SABLE_ABI_MAJOR;
    api_.abi_minor = SABLE_ABI_MINOR;
    api_.log = &FakeHost::log_fn;
    api_.set_error = &FakeHost::set_error_fn;
    api_.ops = ops;
    api_.device_type = device_type;
    api_.compute_dtype = SABLE_DTYPE_F32;
    api_.tp_rank = 0;
    api_.tp_size = 1;
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // Mutable, so a test can plug in more functions (config_int, weight_get, ...).
  SableHostApi* api() { return &api_; }
  SableHostHandle* handle() { return reinterpret_cast<SableHostHandle*>(this); }

  std::vector<std::string> errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  std::string last_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_.empty() ? std::string() : errors_.back();
  }
  std::vector<std::string> logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.clear();
    logs_.clear();
  }

  static FakeHost* from(SableHostHandle* h) { return reinterpret_cast<FakeHost*>(h); }

 private:
  static void log_fn(SableHostHandle* h, int32_t level, const char* message) {
    FakeHost* self = from(h);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->logs_.push_back(std::to_string(level) + ": " + (message ? message : ""));
  }
  static void set_error_fn(SableHostHandle* h, const char* message) {
    FakeHost* self = from(h);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->errors_.emplace_back(message ? message : "");
  }

  SableHostApi api_{};
  mutable std::mutex mu_;
  std::vector<std::string> errors_;
  std::vector<std::string> logs_;
};

}  // namespace sable::test
