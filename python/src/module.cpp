// sable._sable: the nanobind module under the `sable` package. It binds Runtime / PyCall
// (runtime.h), the option table of `sable serve` (core/config) and `sable serve` itself
// (core/cli/serve.h, for python -m sable.launch_server). The Python side (sable/engine.py) shapes
// arguments and results; this file only converts types, releases the GIL around anything that
// blocks or computes, and maps C++ errors to Python exceptions:
//   bad input (HttpError 4xx, ValidationError, ConfigError, invalid_argument) -> ValueError
//   an unknown option name -> TypeError naming it; anything else -> RuntimeError.
#include <nanobind/nanobind.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <chrono>

#include "core/cli/serve.h"
#include "core/config/server_config.h"
#include "python/src/runtime.h"
#include "server/http_error.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sable::python {
namespace {

using std::chrono::milliseconds;

milliseconds to_ms(double seconds) {
  return milliseconds(static_cast<int64_t>(seconds > 0 ? seconds * 1000.0 : 0));
}

// kwargs of sable.Engine -> options. Values: str, bool, int, float, list/tuple of str (list
// fields), None (skipped: SGLang's "use the default").
std::vector<Option> options_from(const nb::dict& kwargs) {
  std::vector<Option> out;
  const auto fields = config::config_fields();
  for (auto [key_obj, value] : kwargs) {
    const std::string key = nb::cast<std::string>(nb::str(key_obj));
    const std::string_view canonical = config::canonical_key(key);
    if (canonical.empty() || key.find('-') != std::string::npos) {
      throw nb::type_error(
          ("sable.Engine() got an unexpected keyword argument '" + key +
           "' (the options are `sable serve`'s, in snake_case: see docs/configuration.md)")
              .c_str());
    }
    if (value.is_none()) continue;
    const config::FieldInfo* info = nullptr;
    for (const auto& f : fields) {
      if (f.name == canonical) info = &f;
    }
    Option o;
    o.key = key;
    if (info->is_list) {
      o.is_list = true;
      if (nb::isinstance<nb::str>(value)) {
        o.items.push_back(nb::cast<std::string>(value));
      } else if (nb::isinstance<nb::list>(value) || nb::isinstance<nb::tuple>(value)) {
        for (auto item : value) {
          if (!nb::isinstance<nb::str>(item)) {
            throw nb::type_error(("sable.Engine(" + key + "=...): expected a list of strings").c_str());
          }
          o.items.push_back(nb::cast<std::string>(item));
        }
      } else {
        throw nb::type_error(("sable.Engine(" + key + "=...): expected a list of strings").c_str());
      }
    } else if (nb::isinstance<nb::bool_>(value)) {
      o.text = nb::cast<bool>(value) ? "true" : "false";
    } else if (nb::isinstance<nb::str>(value) || nb::isinstance<nb::int_>(value) ||
               nb::isinstance<nb::float_>(value)) {
      o.text = nb::cast<std::string>(nb::str(value));
    } else if (nb::isinstance<nb::dict>(value) && info->name == "preferred_sampling_params") {
      o.text = nb::cast<std::string>(nb::module_::import_("json").attr("dumps")(value));
    } else {
      throw nb::type_error(("sable.Engine(" + key + "=...): expected " + std::string(info->type) +
                            ", got " + nb::cast<std::string>(nb::str(value.type().attr("__name__"))))
                               .c_str());
    }
    out.push_back(std::move(o));
  }
  return out;
}

nb::list fields_list() {
  nb::list out;
  for (const auto& f : config::config_fields()) {
    out.append(nb::make_tuple(std::string(f.name), std::string(f.aliases), std::string(f.type),
                              f.default_text, std::string(f.help)));
  }
  return out;
}

}  // namespace
}  // namespace sable::python

NB_MODULE(_sable, m) {
  using namespace sable::python;
  m.doc() = "Sable's C++ engine, bound for the sable package (use sable.Engine, not this module)";

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const sable::server::HttpError& e) {
      PyErr_SetString(e.status() >= 400 && e.status() < 500 ? PyExc_ValueError : PyExc_RuntimeError,
                      e.what());
    } catch (const sable::config::ConfigError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const nlohmann::json::exception& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def("config_fields", &fields_list,
        "(name, aliases, type, default, help) of every `sable serve` option");

  m.def(
      "serve_main",
      [](std::string program, std::vector<std::string> args) {
        nb::gil_scoped_release release;
        return sable::cli::serve_main(program, args);
      },
      "program"_a, "args"_a, "Runs `sable serve` with these command-line arguments; blocks");

  nb::class_<PyCall>(m, "Call")
      .def_prop_ro("id", &PyCall::id)
      .def_prop_ro("stream", &PyCall::stream)
      .def_prop_ro("finished", &PyCall::finished)
      .def(
          "wait",
          [](PyCall& c, double timeout_s) {
            nb::gil_scoped_release release;
            return c.wait(to_ms(timeout_s));
          },
          "timeout_s"_a)
      .def("take", &PyCall::take)
      .def(
          // Blocks until output is ready, checking for Ctrl-C every 50 ms (which aborts the call
          // and raises KeyboardInterrupt), then takes it.
          "next_output",
          [](PyCall& c) {
            for (;;) {
              bool ready;
              {
                nb::gil_scoped_release release;
                ready = c.wait(milliseconds(50));
              }
              if (ready) {
                std::vector<std::string> out = c.take();
                if (!out.empty() || c.finished()) return out;
                continue;
              }
              if (PyErr_CheckSignals() != 0) {
                c.abort();
                throw nb::python_error();
              }
            }
          })
      .def("abort", &PyCall::abort);

  nb::class_<Runtime>(m, "Runtime")
      .def_static(
          "create",
          [](const std::string& yaml_file, const nb::dict& kwargs) {
            std::vector<Option> options = options_from(kwargs);
            sable::config::ServerConfig config = make_config(yaml_file, options);
            nb::gil_scoped_release release;
            return std::make_shared<Runtime>(std::move(config));
          },
          "config_file"_a, "options"_a)
      .def(
          "submit",
          [](Runtime& r, const std::string& body, bool async) {
            nb::gil_scoped_release release;
            return r.submit(body, async);
          },
          "body"_a, "async_"_a)
      .def(
          "encode",
          [](Runtime& r, const std::string& body) {
            nb::gil_scoped_release release;
            return r.encode(body);
          },
          "body"_a)
      .def("model_info", &Runtime::model_info)
      .def("server_info", &Runtime::server_info)
      .def("flush_cache", &Runtime::flush_cache, nb::call_guard<nb::gil_scoped_release>())
      .def(
          "update_weights_from_disk",
          [](Runtime& r, const std::string& path) {
            nb::gil_scoped_release release;
            const auto u = r.update_weights_from_disk(path);
            return std::make_tuple(u.success, u.message, u.num_paused_requests);
          },
          "model_path"_a)
      .def("load_lora_adapter", &Runtime::load_lora_adapter, "lora_name"_a, "lora_path"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("unload_lora_adapter", &Runtime::unload_lora_adapter, "lora_name"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("start_expert_distribution_record", &Runtime::start_expert_distribution_record,
           nb::call_guard<nb::gil_scoped_release>())
      .def("stop_expert_distribution_record", &Runtime::stop_expert_distribution_record,
           nb::call_guard<nb::gil_scoped_release>())
      .def("dump_expert_distribution_record", &Runtime::dump_expert_distribution_record,
           nb::call_guard<nb::gil_scoped_release>())
      .def("tokenize", &Runtime::tokenize, "text"_a, "add_special_tokens"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("detokenize", &Runtime::detokenize, "ids"_a, "skip_special_tokens"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("apply_chat_template", &Runtime::apply_chat_template, "context_json"_a)
      .def_prop_ro("has_chat_template", &Runtime::has_chat_template)
      .def(
          "wait_ready",
          [](Runtime& r, double timeout_s) {
            nb::gil_scoped_release release;
            return r.hub().take(to_ms(timeout_s));
          },
          "timeout_s"_a)
      .def("shutdown", &Runtime::shutdown, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("is_shut_down", &Runtime::is_shut_down);
}
