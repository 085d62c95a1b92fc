// Model plugin "transformers": the generic fallback. It sets SABLE_MODEL_GENERIC and claims no
// architecture natively, so impl=auto uses it only when no native plugin claims the checkpoint's
// architecture, and impl=transformers forces it (select_model_plugin in core/plugin decides).
#include "transformers/generic_model.h"

namespace {

using Adapter = ::sable::cpp::detail::ModelAdapter<sable::models::generic::GenericModel>;
const char* const kNoArchitectures[] = {nullptr};

const SableModelApi kModelApi = {sizeof(SableModelApi), SABLE_MODEL_GENERIC, 0, kNoArchitectures,
                                 &Adapter::create, &Adapter::destroy, &Adapter::get_info,
                                 &Adapter::load_weights, &Adapter::forward};

}  // namespace

SABLE_EXPORT_PLUGIN("transformers", "0.1.0", SABLE_PLUGIN_MODEL, &kModelApi,
                    "generic transformers-style decoder driven by config.json")
