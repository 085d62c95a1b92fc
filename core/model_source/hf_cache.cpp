// The hub cache layout (see hf_cache.h).
#include "core/model_source/hf_cache.h"

#include <fmt/format.h>

#include <fstream>
#include <regex>
#include <stdexcept>

namespace sable::model_source {

namespace fs = std::filesystem;

bool is_repo_id(std::string_view text) {
  static const std::regex kPattern(R"(^([A-Za-z0-9_.\-]+/)?[A-Za-z0-9_.\-]+$)");
  if (text.empty() || text.size() > 96) return false;
  if (!std::regex_match(text.begin(), text.end(), kPattern)) return false;
  if (text.find("--") != std::string_view::npos || text.find("..") != std::string_view::npos) {
    return false;
  }
  // Each part starts and ends with an alphanumeric or '_' (the \b of huggingface_hub's regex).
  const auto edge_ok = [](char c) { return c != '-' && c != '.'; };
  const size_t slash = text.find('/');
  const std::string_view parts[2] = {
      slash == std::string_view::npos ? text : text.substr(0, slash),
      slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1)};
  for (const auto part : parts) {
    if (part.empty()) continue;
    if (!edge_ok(part.front()) || !edge_ok(part.back())) return false;
  }
  return !(text.size() >= 4 && text.substr(text.size() - 4) == ".git");
}

bool is_commit_hash(std::string_view text) {
  if (text.size() != 40) return false;
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

fs::path repo_folder(const fs::path& cache_dir, std::string_view repo_id) {
  std::string name = "models--";
  for (const char c : repo_id) name += c == '/' ? std::string("--") : std::string(1, c);
  return cache_dir / name;
}

std::optional<std::string> cached_commit(const fs::path& repo_dir, std::string_view revision) {
  if (is_commit_hash(revision)) return std::string(revision);
  std::ifstream in(repo_dir / "refs" / std::string(revision));
  std::string commit;
  if (!in || !std::getline(in, commit)) return std::nullopt;
  while (!commit.empty() && (commit.back() == '\r' || commit.back() == ' ')) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

void write_ref(const fs::path& repo_dir, std::string_view revision, std::string_view commit) {
  if (is_commit_hash(revision)) return;
  const fs::path ref = repo_dir / "refs" / std::string(revision);
  fs::create_directories(ref.parent_path());
  const fs::path tmp = ref.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;  // huggingface_hub writes the bare commit, no newline
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, ref);
}

fs::path snapshot_dir(const fs::path& repo_dir, std::string_view commit) {
  return repo_dir / "snapshots" / std::string(commit);
}

fs::path blob_path(const fs::path& repo_dir, std::string_view etag) {
  return repo_dir / "blobs" / std::string(etag);
}

fs::path lock_path(const fs::path& cache_dir, std::string_view repo_id, std::string_view etag) {
  return cache_dir / ".locks" / repo_folder("", repo_id) / (std::string(etag) + ".lock");
}

void link_into_snapshot(const fs::path& repo_dir, std::string_view commit,
                        std::string_view filename, std::string_view etag) {
  const fs::path pointer = snapshot_dir(repo_dir, commit) / std::string(filename);
  fs::create_directories(pointer.parent_path());
  const fs::path target = blob_path(repo_dir, etag).lexically_relative(pointer.parent_path());
  std::error_code ec;
  fs::remove(pointer, ec);
  fs::create_symlink(target, pointer, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("cannot link {} -> {}: {}", pointer.string(),
                                         target.string(), ec.message()));
  }
}

std::string normalize_etag(std::string_view etag) {
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  while (!etag.empty() && etag.front() == '"') etag.remove_prefix(1);
  while (!etag.empty() && etag.back() == '"') etag.remove_suffix(1);
  return std::string(etag);
}

}  // namespace sable::model_source
