// Unigram (see unigram_model.h).
#include "core/tokenizer/unigram_model.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "core/tokenizer/utf8.h"

namespace sable::tokenizer {

namespace {
constexpr double kUnkPenalty = 10.0;  // HF tokenizers' K_UNK_PENALTY
}

UnigramModel::UnigramModel(const nlohmann::json& spec) {
  if (!spec.contains("vocab") || !spec["vocab"].is_array())
    throw std::runtime_error("Unigram model: \"vocab\" must be a list of [piece, score]");
  double min_score = std::numeric_limits<double>::infinity();
  for (const auto& entry : spec["vocab"]) {
    if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() || !entry[1].is_number())
      throw std::runtime_error("Unigram model: every vocab entry must be [piece, score]");
    const auto id = static_cast<int32_t>(id_to_token_.size());
    const std::string piece = entry[0].get<std::string>();
    id_to_token_.push_back(piece);
    scores_.push_back(entry[1].get<double>());
    token_to_id_.emplace(piece, id);  // the first of duplicate pieces wins, as in HF
    max_piece_bytes_ = std::max(max_piece_bytes_, piece.size());
    min_score = std::min(min_score, scores_.back());
  }
  if (id_to_token_.empty()) throw std::runtime_error("Unigram model: empty vocab");
  unk_score_ = min_score - kUnkPenalty;
  if (spec.contains("unk_id") && !spec["unk_id"].is_null()) {
    unk_id_ = spec["unk_id"].get<int32_t>();
    if (unk_id_ < 0 || static_cast<size_t>(unk_id_) >= id_to_token_.size())
      throw std::runtime_error("Unigram model: unk_id " + std::to_string(unk_id_) +
                               " is outside the vocab");
  }
  byte_fallback_ = spec.value("byte_fallback", false);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = token_to_id_.find(std::string_view(name));
    byte_ids_[b] = it == token_to_id_.end() ? -1 : it->second;
  }
}

void UnigramModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  struct Node {
    int32_t id = -1;
    double score = 0.0;
    std::optional<size_t> starts_at;
  };
  const size_t n = word.size();
  std::vector<Node> best(n + 1);
  std::string piece;
  for (size_t start = 0; start < n;) {
    size_t next = start;
    utf8::next(word, next);
    const size_t char_len = next - start;
    const double here = best[start].score;
    bool has_single = false;
    // Every vocabulary piece that starts here (the trie's common-prefix search).
    for (size_t end = next; end <= n && end - start <= max_piece_bytes_;) {
      piece.assign(word.substr(start, end - start));
      const auto it = token_to_id_.find(piece);
      if (it != token_to_id_.end()) {
        Node& target = best[end];
        const double candidate = scores_[static_cast<size_t>(it->second)] + here;
        if (!target.starts_at || candidate > target.score) {
          target = {it->second, candidate, start};
        }
        if (end - start == char_len) has_single = true;
      }
      if (end == n) break;
      utf8::next(word, end);
    }
    if (!has_single) {
      Node& target = best[next];
      const double candidate = unk_score_ + here;
      if (!target.starts_at || candidate > target.score) target = {unk_id_, candidate, start};
    }
    start = next;
  }
  // Backtrack; consecutive unk pieces fuse into one.
  std::vector<std::pair<size_t, size_t>> spans;  // [begin, end) of each token, last first
  bool fusing = false;
  for (size_t end = n; end > 0;) {
    const Node& node = best[end];
    const size_t begin = *node.starts_at;
    if (node.id == unk_id_ && fusing) {
      spans.back().first = begin;
    } else {
      spans.emplace_back(begin, end);
    }
    fusing = node.id == unk_id_;
    end = begin;
  }
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    const std::string_view text = word.substr(it->first, it->second - it->first);
    const auto found = token_to_id_.find(text);
    if (found != token_to_id_.end()) {
      out.push_back(found->second);
      continue;
    }
    if (byte_fallback_ &&
        std::all_of(text.begin(), text.end(),
                    [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; })) {
      for (char c : text) out.push_back(byte_ids_[static_cast<unsigned char>(c)]);
      continue;
    }
    if (unk_id_ < 0)
      throw std::runtime_error("Unigram model: no piece covers '" + std::string(text) +
                               "' and the model has no unk_id");
    out.push_back(unk_id_);
  }
}

}  // namespace sable::tokenizer
