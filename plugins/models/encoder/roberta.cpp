// RoBERTa and XLM-RoBERTa (RobertaModel, XLMRobertaModel and their ForSequenceClassification
// forms): BERT's encoder with positions offset by padding_idx + 1 (transformers numbers the
// positions of non-padding tokens from pad_token_id + 1), one token type, and the classification
// head dense -> tanh -> out_proj on the first token (<s>).
#include "encoder/encoder.h"

namespace sable::models {

EncoderOptions roberta_options(const cpp::Host& host) {
  require_absolute_positions(host);
  const int64_t pad = host.get_int("pad_token_id").value_or(1);
  if (pad < 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              "config.json: pad_token_id must be non-negative, got " + std::to_string(pad));
  EncoderOptions opt;
  opt.position_offset = pad + 1;
  opt.family = "roberta";
  return opt;
}

}  // namespace sable::models
