// The Hugging Face hub cache layout, as huggingface_hub writes and reads it (file_download.py):
//
//   <cache>/models--ORG--NAME/refs/<revision>             text file: the commit of a branch or tag
//   <cache>/models--ORG--NAME/snapshots/<commit>/<file>   relative symlink -> ../../blobs/<etag>
//   <cache>/models--ORG--NAME/blobs/<etag>                the content; <etag>.incomplete while
//                                                         it downloads (resumed with a Range)
//   <cache>/.locks/models--ORG--NAME/<etag>.lock          flock()ed while a blob is written
//
// <etag> is the sha256 of LFS files (the weights) and the git blob id of the others. A snapshot
// folder is therefore directly a checkpoint folder: Sable uses it in place, with no copy.
// Pure path logic plus small file operations; thread-safe (no shared state).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sable::model_source {

// huggingface_hub's validate_repo_id: "NAME" or "ORG/NAME" of [A-Za-z0-9_.-], no "--" or "..",
// not starting or ending with '-' or '.', at most 96 characters.
bool is_repo_id(std::string_view text);

// A 40-hex-digit git commit id (such a revision needs no refs/ lookup).
bool is_commit_hash(std::string_view text);

// The repo's folder in the cache: <cache>/models--ORG--NAME.
std::filesystem::path repo_folder(const std::filesystem::path& cache_dir, std::string_view repo_id);

// The commit a revision points to: the revision itself when it is a commit id, else the content of
// refs/<revision>; nullopt when the cache has no such ref.
std::optional<std::string> cached_commit(const std::filesystem::path& repo_dir,
                                         std::string_view revision);

// Writes refs/<revision> = commit atomically (temporary file + rename). No-op for a commit id.
void write_ref(const std::filesystem::path& repo_dir, std::string_view revision,
               std::string_view commit);

std::filesystem::path snapshot_dir(const std::filesystem::path& repo_dir, std::string_view commit);
std::filesystem::path blob_path(const std::filesystem::path& repo_dir, std::string_view etag);
std::filesystem::path lock_path(const std::filesystem::path& cache_dir, std::string_view repo_id,
                                std::string_view etag);

// Makes snapshots/<commit>/<filename> a relative symlink to blobs/<etag> (replacing an older
// link), creating folders as needed. `filename` may contain '/' (nested files).
void link_into_snapshot(const std::filesystem::path& repo_dir, std::string_view commit,
                        std::string_view filename, std::string_view etag);

// ETag header value -> the blob name: quotes and a weak "W/" prefix removed.
std::string normalize_etag(std::string_view etag);

}  // namespace sable::model_source
