// Header-only C++ helpers for plugin authors: errors inside a plugin are exceptions; at the C
// boundary one macro pair turns them into a SableStatus plus a message for the host.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

#include "sable/host.h"

namespace sable::cpp {

// Thrown inside plugin code; carries the status the boundary returns.
class Error : public std::runtime_error {
 public:
  Error(SableStatus status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  SableStatus status() const noexcept { return status_; }

 private:
  SableStatus status_;
};

[[noreturn]] inline void fail(SableStatus status, const std::string& message) {
  throw Error(status, message);
}

// Throws when a host/ops call failed; the host already holds the details.
inline void check(SableStatus status, const char* what) {
  if (status != SABLE_OK) throw Error(status, std::string(what) + " failed");
}

// Maps the exception in flight to a status, reporting its message through the host.
inline SableStatus report_current_exception(const SableHostApi* host, SableHostHandle* h) noexcept {
  SableStatus status = SABLE_ERR_INTERNAL;
  const char* message = "unknown exception";
  std::string text;
  try {
    throw;
  } catch (const Error& e) {
    status = e.status();
    text = e.what();
    message = text.c_str();
  } catch (const std::bad_alloc&) {
    status = SABLE_ERR_OUT_OF_MEMORY;
    message = "out of memory";
  } catch (const std::exception& e) {
    text = e.what();
    message = text.c_str();
  } catch (...) {
  }
  if (host != nullptr && host->set_error != nullptr) host->set_error(h, message);
  return status;
}

}  // namespace sable::cpp

// Wrap every exported function body: SABLE_TRY { ... return SABLE_OK; } SABLE_CATCH(host, handle)
#define SABLE_TRY try
#define SABLE_CATCH(host, handle)                                     \
  catch (...) {                                                       \
    return ::sable::cpp::report_current_exception((host), (handle)); \
  }
