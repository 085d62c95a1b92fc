// How an embedding engine turns a prompt's hidden states into one vector: the pooling (first
// token, mean over tokens, last token) and whether it is L2-normalised.
//
// Chosen at startup, in this order: the `pooling` / `pooling_normalize` options when not auto;
// else the sentence-transformers files of the checkpoint (modules.json names the Pooling module's
// folder, usually 1_Pooling/config.json with pooling_mode_cls_token / _mean_tokens / _lasttoken,
// and a Normalize module means normalised); else the model's default as SGLang has it: CLS for
// encoders (BERT family), the last token for decoders, normalised.
// A sentence-transformers pipeline with modules Sable does not run (Dense projections, max or
// weighted-mean pooling) is a startup error naming the module, not a silent difference.
#pragma once

#include <filesystem>
#include <string>

namespace sable::engine {

enum class PoolingKind { kLast, kCls, kMean };

struct Pooling {
  PoolingKind kind = PoolingKind::kLast;
  bool normalize = true;
  std::string source;  // where the choice came from, for the startup log
};

// `pooling`: auto | cls | mean | last; `normalize`: auto | true | false; `encoder`: the model is
// bidirectional (BERT family). Throws std::runtime_error naming the file and the problem.
Pooling resolve_pooling(const std::filesystem::path& model_dir, const std::string& pooling,
                        const std::string& normalize, bool encoder);

const char* pooling_name(PoolingKind kind);

}  // namespace sable::engine
