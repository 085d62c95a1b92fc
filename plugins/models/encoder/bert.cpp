// BERT (BertModel, BertForSequenceClassification): absolute positions from 0, token types from
// the tokenizer's pair template (0 for the first text, 1 for the second).
#include "encoder/encoder.h"

namespace sable::models {

EncoderOptions bert_options(const cpp::Host& host) {
  const std::string type = host.get_string("position_embedding_type").value_or("absolute");
  if (type != "absolute")
    cpp::fail(SABLE_ERR_UNSUPPORTED,
              "config.json: position_embedding_type '" + type + "' is not supported (absolute)");
  EncoderOptions opt;
  opt.position_offset = 0;
  opt.family = "bert";
  return opt;
}

}  // namespace sable::models
