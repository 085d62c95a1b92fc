// Header-only C++ wrappers for plugin authors: derive from a base class, export with one macro.
//
//   class MyModel : public sable::cpp::Model { ... };
//   SABLE_MODEL_PLUGIN("mymodel", "0.1.0", MyModel, 0, "MyArchForCausalLM")
//
// The macro builds the C function tables, catches every exception at the boundary, and exports
// sable_plugin_entry (the only visible symbol when built with hidden visibility).
#pragma once

#include <memory>

#include "sable/cpp/error.h"
#include "sable/cpp/host.h"
#include "sable/cpp/tensor.h"
#include "sable/sable.h"

namespace sable::cpp {

// Base of a model-architecture plugin. The constructor reads and validates the config (throw
// sable::cpp::Error naming the field for anything unsupported); load_weights fetches tensors.
class Model {
 public:
  explicit Model(Host host) : host_(host) {}
  virtual ~Model() = default;
  virtual SableModelInfo info() const = 0;
  virtual void load_weights() = 0;
  virtual void forward(const Ops& ops, const SableForwardBatch& batch, SableForwardOutput& out) = 0;
  // Vision-language models (ABI 1.3) override this and set SableModelInfo.image_input.
  virtual void encode_images(const Ops&, const SableImageBatch&, SableTensor&) {
    fail(SABLE_ERR_UNSUPPORTED, "this model takes no image input");
  }
  const Host& host() const { return host_; }

 protected:
  Host host_;
};

namespace detail {

// SableModel is opaque to the host; in C++ plugins it is this box around the C++ object.
template <class T>
struct ModelBox {
  std::unique_ptr<T> model;
};

template <class T>
struct ModelAdapter {
  static SableStatus create(const SableHostApi* host, SableHostHandle* h, SableModel** out) {
    SABLE_TRY {
      auto box = std::make_unique<ModelBox<T>>();
      box->model = std::make_unique<T>(Host(host, h));
      *out = reinterpret_cast<SableModel*>(box.release());
      return SABLE_OK;
    }
    SABLE_CATCH(host, h)
  }
  static T& get(SableModel* m) { return *reinterpret_cast<ModelBox<T>*>(m)->model; }
  static void destroy(SableModel* m) { delete reinterpret_cast<ModelBox<T>*>(m); }
  static SableStatus get_info(SableModel* m, SableModelInfo* out) {
    const Host& host = get(m).host();
    SABLE_TRY {
      *out = get(m).info();
      out->struct_size = sizeof(SableModelInfo);
      return SABLE_OK;
    }
    SABLE_CATCH(host.api(), host.handle())
  }
  static SableStatus load_weights(SableModel* m) {
    const Host& host = get(m).host();
    SABLE_TRY {
      get(m).load_weights();
      return SABLE_OK;
    }
    SABLE_CATCH(host.api(), host.handle())
  }
  static SableStatus forward(SableModel* m, SableOpsContext* ctx, const SableForwardBatch* batch,
                             SableForwardOutput* out) {
    const Host& host = get(m).host();
    SABLE_TRY {
      get(m).forward(Ops(host.ops(), ctx), *batch, *out);
      return SABLE_OK;
    }
    SABLE_CATCH(host.api(), host.handle())
  }
  static SableStatus encode_images(SableModel* m, SableOpsContext* ctx, const SableImageBatch* in,
                                   SableTensor* out) {
    const Host& host = get(m).host();
    SABLE_TRY {
      get(m).encode_images(Ops(host.ops(), ctx), *in, *out);
      return SABLE_OK;
    }
    SABLE_CATCH(host.api(), host.handle())
  }
};

}  // namespace detail
}  // namespace sable::cpp

// Exports a model plugin named NAME serving the listed architectures with class CLASS.
// FLAGS is a SableModelFlags mask (0, or SABLE_MODEL_GENERIC for a fallback that claims any LM).
#define SABLE_MODEL_PLUGIN(NAME, VERSION, CLASS, FLAGS, ...)                                  \
  namespace {                                                                                 \
  const char* const kSableArchitectures[] = {__VA_ARGS__};                                    \
  using SableAdapter = ::sable::cpp::detail::ModelAdapter<CLASS>;                             \
  const SableModelApi kSableModelApi = {                                                      \
      sizeof(SableModelApi),                                                                  \
      (FLAGS),                                                                                \
      sizeof(kSableArchitectures) / sizeof(kSableArchitectures[0]),                           \
      kSableArchitectures,                                                                    \
      &SableAdapter::create,                                                                  \
      &SableAdapter::destroy,                                                                 \
      &SableAdapter::get_info,                                                                \
      &SableAdapter::load_weights,                                                            \
      &SableAdapter::forward,                                                                 \
      &SableAdapter::encode_images};                                                          \
  const SablePlugin kSablePlugin = {sizeof(SablePlugin), SABLE_ABI_MAJOR, SABLE_ABI_MINOR,    \
                                    (NAME), (VERSION), SABLE_PLUGIN_MODEL, 0, &kSableModelApi, \
                                    "model plugin"};                                          \
  }                                                                                           \
  SABLE_PLUGIN_EXPORT const SablePlugin* sable_plugin_entry(uint32_t host_abi_major) {        \
    return host_abi_major == SABLE_ABI_MAJOR ? &kSablePlugin : nullptr;                       \
  }

// Exports a plugin of any kind from a ready C table (attention, sampler, grammar plugins).
#define SABLE_EXPORT_PLUGIN(NAME, VERSION, KIND, API_PTR, DESCRIPTION)                         \
  namespace {                                                                                 \
  const SablePlugin kSablePlugin = {sizeof(SablePlugin), SABLE_ABI_MAJOR, SABLE_ABI_MINOR,    \
                                    (NAME), (VERSION), (KIND), 0, (API_PTR), (DESCRIPTION)};  \
  }                                                                                           \
  SABLE_PLUGIN_EXPORT const SablePlugin* sable_plugin_entry(uint32_t host_abi_major) {        \
    return host_abi_major == SABLE_ABI_MAJOR ? &kSablePlugin : nullptr;                       \
  }
