// BERT (BertModel, BertForSequenceClassification): absolute positions from 0, token types from
// the tokenizer's pair template (0 for the first text, 1 for the second).
#include "encoder/encoder.h"

namespace sable::models {

EncoderOptions bert_options(const cpp::Host& host) {
  require_absolute_positions(host);
  EncoderOptions opt;
  opt.position_offset = 0;
  opt.family = "bert";
  return opt;
}

}  // namespace sable::models
