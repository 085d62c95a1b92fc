// What sequence-classification checkpoints (*ForSequenceClassification) share across the model
// plugins: the number of labels, read from config.json as transformers does (`num_labels`, else
// the entries of `id2label`), and the ABI fields that make a model a score model.
#pragma once

#include <string>

#include "sable/cpp/plugin.h"

namespace sable::models {

// num_labels, or the size of id2label ("0", "1", ... keys); an error naming both when neither.
inline int64_t config_num_labels(const cpp::Host& host) {
  if (const auto n = host.get_int("num_labels")) {
    if (*n < 1)
      cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
                "config.json: num_labels must be positive, got " + std::to_string(*n));
    return *n;
  }
  int64_t n = 0;
  while (host.has(("id2label." + std::to_string(n)).c_str())) ++n;
  if (n == 0)
    cpp::fail(SABLE_ERR_INVALID_ARGUMENT,
              "config.json: a sequence-classification model needs num_labels or id2label");
  return n;
}

// Marks `info` as a score model of `num_labels` labels read at `token`.
inline void set_score_output(SableModelInfo& info, int64_t num_labels, SableScoreToken token) {
  info.output_kind = SABLE_MODEL_OUTPUT_SCORE;
  info.num_labels = static_cast<int32_t>(num_labels);
  info.score_token = token;
}

}  // namespace sable::models
