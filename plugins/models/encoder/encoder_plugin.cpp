// Model plugin "encoder": BERT, RoBERTa and XLM-RoBERTa encoders, as embedding models (hidden
// states, pooled by the engine) and as sequence classifiers (cross-encoder rerankers). The
// config's model_type picks the family's reader (bert.cpp, roberta.cpp); the encoder itself is
// shared (encoder.cpp).
#include <string>

#include "encoder/encoder.h"

namespace sable::models {
namespace {

EncoderOptions encoder_options(const cpp::Host& host) {
  const std::string type = host.get_string("model_type").value_or("");
  if (type == "bert") return bert_options(host);
  if (type == "roberta" || type == "xlm-roberta") return roberta_options(host);
  cpp::fail(SABLE_ERR_UNSUPPORTED, "config.json: model_type '" + type +
                                       "' is not served by the encoder plugin (bert, roberta, "
                                       "xlm-roberta)");
}

class EncoderPluginModel final : public EncoderModel {
 public:
  explicit EncoderPluginModel(cpp::Host host) : EncoderModel(host, encoder_options(host)) {}
};

}  // namespace
}  // namespace sable::models

SABLE_MODEL_PLUGIN("encoder", "0.1.0", sable::models::EncoderPluginModel, 0, "BertModel",
                   "BertForSequenceClassification", "RobertaModel",
                   "RobertaForSequenceClassification", "XLMRobertaModel",
                   "XLMRobertaForSequenceClassification")
