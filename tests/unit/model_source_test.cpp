// The model resolver's local logic: environment -> cache settings, the hub cache layout (repo
// folders, refs, snapshot links to blobs), repo-id recognition, the checkpoint file sets, and
// resolve_model on local folders, GGUF files and cached snapshots (no network: offline or complete).
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "core/model_source/blob_fetch.h"
#include "core/model_source/checkpoint_files.h"
#include "core/model_source/hub_http.h"
#include "core/model_source/progress.h"
#include "core/model_source/hf_cache.h"
#include "core/model_source/hub_settings.h"
#include "core/model_source/resolve_model.h"

namespace ms = sable::model_source;
namespace fs = std::filesystem;

namespace {

ms::EnvLookup env_of(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("sable_model_source_" + name + "_" +
                                                  std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace

TEST(HubSettings, DefaultsFollowHuggingfaceHub) {
  const auto s = ms::HubSettings::from_env(env_of({{"HOME", "/home/u"}}));
  EXPECT_EQ(s.hf_home, "/home/u/.cache/huggingface");
  EXPECT_EQ(s.cache_dir, "/home/u/.cache/huggingface/hub");
  EXPECT_EQ(s.token_file, "/home/u/.cache/huggingface/token");
  EXPECT_EQ(s.endpoint, "https://huggingface.co");
  EXPECT_TRUE(s.token.empty());
  EXPECT_FALSE(s.offline);
}

TEST(HubSettings, VariablesOverrideInHuggingfaceHubOrder) {
  auto s = ms::HubSettings::from_env(env_of({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/xdg"}}));
  EXPECT_EQ(s.cache_dir, "/xdg/huggingface/hub");
  s = ms::HubSettings::from_env(env_of({{"HOME", "/h"}, {"HF_HOME", "~/hf"}}));
  EXPECT_EQ(s.cache_dir, "/h/hf/hub");
  EXPECT_EQ(s.token_file, "/h/hf/token");
  s = ms::HubSettings::from_env(
      env_of({{"HF_HOME", "/a"}, {"HUGGINGFACE_HUB_CACHE", "/legacy"}, {"HF_HUB_CACHE", "/c"}}));
  EXPECT_EQ(s.cache_dir, "/c");
  s = ms::HubSettings::from_env(env_of({{"HF_HOME", "/a"}, {"HUGGINGFACE_HUB_CACHE", "/legacy"}}));
  EXPECT_EQ(s.cache_dir, "/legacy");
  s = ms::HubSettings::from_env(env_of({{"HF_ENDPOINT", "http://127.0.0.1:9/"},
                                        {"HF_HUB_OFFLINE", "yes"}}));
  EXPECT_EQ(s.endpoint, "http://127.0.0.1:9");
  EXPECT_TRUE(s.offline);
  EXPECT_TRUE(ms::HubSettings::from_env(env_of({{"TRANSFORMERS_OFFLINE", "1"}})).offline);
  EXPECT_FALSE(ms::HubSettings::from_env(env_of({{"HF_HUB_OFFLINE", "0"}})).offline);
}

TEST(HubSettings, TokenFromVariableElseLoginFile) {
  const fs::path home = fresh_dir("token");
  write(home / "token", "  hf_fromfile \n");
  auto s = ms::HubSettings::from_env(env_of({{"HF_HOME", home.string()}}));
  EXPECT_EQ(s.token, "hf_fromfile");
  s = ms::HubSettings::from_env(env_of({{"HF_HOME", home.string()}, {"HF_TOKEN", "hf_env"}}));
  EXPECT_EQ(s.token, "hf_env");
  fs::remove_all(home);
}

TEST(HfCache, RepoIdsAndCommits) {
  for (const char* ok : {"Qwen/Qwen2.5-0.5B-Instruct", "gpt2", "meta-llama/Llama-3.1-8B", "a_b/c.d"}) {
    EXPECT_TRUE(ms::is_repo_id(ok)) << ok;
  }
  for (const char* bad : {"", "a/b/c", "a--b/c", "a/b..c", "-a/b", "a/b.", "a/b.git", "/abs/path",
                          "a b/c", "./x"}) {
    EXPECT_FALSE(ms::is_repo_id(bad)) << bad;
  }
  EXPECT_TRUE(ms::is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(ms::is_commit_hash("main"));
  EXPECT_FALSE(ms::is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
}

TEST(HfCache, LayoutMatchesHuggingfaceHub) {
  EXPECT_EQ(ms::repo_folder("/c", "Qwen/Qwen2.5-0.5B"), "/c/models--Qwen--Qwen2.5-0.5B");
  EXPECT_EQ(ms::repo_folder("/c", "gpt2"), "/c/models--gpt2");
  EXPECT_EQ(ms::lock_path("/c", "o/n", "abc"), "/c/.locks/models--o--n/abc.lock");
  EXPECT_EQ(ms::normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(ms::normalize_etag("\"abc\""), "abc");
}

TEST(HfCache, RefsAndSnapshotLinks) {
  const fs::path repo = fresh_dir("links") / "models--o--n";
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  EXPECT_FALSE(ms::cached_commit(repo, "main"));
  ms::write_ref(repo, "main", commit);
  EXPECT_EQ(ms::cached_commit(repo, "main"), commit);
  EXPECT_EQ(ms::cached_commit(repo, commit), commit);  // a commit needs no ref
  write(ms::blob_path(repo, "e1"), "hello");
  ms::link_into_snapshot(repo, commit, "sub/dir/f.txt", "e1");
  const fs::path pointer = ms::snapshot_dir(repo, commit) / "sub/dir/f.txt";
  ASSERT_TRUE(fs::is_symlink(pointer));
  EXPECT_EQ(fs::read_symlink(pointer), "../../../../blobs/e1");  // relative, as huggingface_hub
  std::ifstream in(pointer);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "hello");
  ms::link_into_snapshot(repo, commit, "sub/dir/f.txt", "e1");  // relinking is fine
  fs::remove_all(repo.parent_path());
}

TEST(CheckpointFiles, WantedFilesOfARepo) {
  const std::vector<std::string> repo = {"README.md", "config.json", "tokenizer.json",
                                         "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                         "model-00002-of-00002.safetensors", "pytorch_model.bin",
                                         "chat_template.jinja"};
  EXPECT_EQ(ms::wanted_metadata(repo),
            (std::vector<std::string>{"config.json", "tokenizer.json", "chat_template.jinja",
                                      "model.safetensors.index.json"}));
  const std::string index = R"({"weight_map": {"a": "model-00002-of-00002.safetensors",
      "b": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})";
  EXPECT_EQ(ms::wanted_weights(repo, index),
            (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                      "model-00002-of-00002.safetensors"}));
  EXPECT_THROW(ms::wanted_weights(repo, R"({"weight_map": {"a": "gone.safetensors"}})"),
               std::runtime_error);
  EXPECT_THROW(ms::wanted_weights(repo, R"({"weight_map": {"a": "../x.safetensors"}})"),
               std::runtime_error);
  EXPECT_THROW(ms::wanted_weights(repo, "[]"), std::runtime_error);
  EXPECT_EQ(ms::wanted_weights({"model.safetensors", "x.safetensors"}, ""),
            (std::vector<std::string>{"model.safetensors"}));
  EXPECT_EQ(ms::wanted_weights({"b.safetensors", "a.safetensors", "sub/c.safetensors"}, ""),
            (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
}

TEST(CheckpointFiles, MissingRequiredFollowsTheIndex) {
  const fs::path d = fresh_dir("missing");
  EXPECT_EQ(ms::missing_required(d, ms::Want::kTokenizer), (std::vector<std::string>{"tokenizer.json"}));
  write(d / "tokenizer.json", "{}");
  write(d / "config.json", "{}");
  EXPECT_EQ(ms::missing_required(d, ms::Want::kModel),
            (std::vector<std::string>{"model.safetensors"}));
  write(d / "model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  write(d / "s1.safetensors", "x");
  EXPECT_EQ(ms::missing_required(d, ms::Want::kModel), (std::vector<std::string>{"s2.safetensors"}));
  write(d / "s2.safetensors", "x");
  EXPECT_TRUE(ms::missing_required(d, ms::Want::kModel).empty());
  fs::create_symlink("nowhere", d / "dangling.json");
  fs::remove(d / "s2.safetensors");
  fs::create_symlink("../gone", d / "s2.safetensors");  // a link whose blob is gone is missing
  EXPECT_EQ(ms::missing_required(d, ms::Want::kModel), (std::vector<std::string>{"s2.safetensors"}));
  fs::remove_all(d);
}

TEST(ResolveModel, LocalFoldersAndGgufFilesStayAsTheyAre) {
  const fs::path d = fresh_dir("local");
  write(d / "ckpt" / "config.json", "{}");
  auto m = ms::resolve_model((d / "ckpt").string());
  EXPECT_EQ(m.kind, ms::SourceKind::kFolder);
  EXPECT_EQ(m.path, d / "ckpt");
  EXPECT_TRUE(m.repo_id.empty());
  write(d / "one" / "m.Q4_1.gguf", "GGUF");
  m = ms::resolve_model((d / "one" / "m.Q4_1.gguf").string());
  EXPECT_EQ(m.kind, ms::SourceKind::kGguf);
  m = ms::resolve_model((d / "one").string());
  EXPECT_EQ(m.kind, ms::SourceKind::kGguf);
  EXPECT_EQ(m.path, d / "one" / "m.Q4_1.gguf");
  write(d / "one" / "m.F16.gguf", "GGUF");
  EXPECT_THROW(ms::resolve_model((d / "one").string()), ms::ResolveError);
  write(d / "notes.txt", "x");
  EXPECT_THROW(ms::resolve_model((d / "notes.txt").string()), ms::ResolveError);
  EXPECT_THROW(ms::resolve_model((d / "absent").string()), ms::ResolveError);
  EXPECT_THROW(ms::resolve_model("not a/repo/id"), ms::ResolveError);
  fs::remove_all(d);
}

TEST(ResolveModel, HubIdFromACompleteCacheNeedsNoNetwork) {
  const fs::path cache = fresh_dir("cache");
  ms::ResolveOptions o;
  o.hub = ms::HubSettings::from_env(env_of({{"HF_HUB_CACHE", cache.string()},
                                            {"HF_ENDPOINT", "http://127.0.0.1:1"}}));
  const fs::path repo = ms::repo_folder(cache, "org/tiny");
  const std::string commit = "1111111111111111111111111111111111111111";
  for (const char* f : {"config.json", "tokenizer.json", "model.safetensors"}) {
    write(ms::blob_path(repo, std::string("blob-") + f), "{}");
    ms::link_into_snapshot(repo, commit, f, std::string("blob-") + f);
  }
  ms::write_ref(repo, "main", commit);
  // The endpoint is unreachable: only a cache hit can succeed.
  const auto m = ms::resolve_model("org/tiny", o);
  EXPECT_EQ(m.path, ms::snapshot_dir(repo, commit));
  EXPECT_EQ(m.commit, commit);
  EXPECT_EQ(m.repo_id, "org/tiny");
  o.revision = commit;
  EXPECT_EQ(ms::resolve_model("org/tiny", o).path, ms::snapshot_dir(repo, commit));
  for (const char* bad : {"", "../../etc", "/abs", "a b"}) {
    o.revision = bad;
    EXPECT_THROW(ms::resolve_model("org/tiny", o), ms::ResolveError) << bad;
  }

  // Offline with a missing revision or file: an error naming the repo and HF_HUB_OFFLINE.
  o.hub.offline = true;
  o.revision = "v2";
  try {
    ms::resolve_model("org/tiny", o);
    FAIL() << "expected an error";
  } catch (const ms::ResolveError& e) {
    EXPECT_NE(std::string(e.what()).find("org/tiny"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HF_HUB_OFFLINE"), std::string::npos) << e.what();
  }
  o.revision = "main";
  fs::remove(ms::blob_path(repo, "blob-model.safetensors"));
  try {
    ms::resolve_model("org/tiny", o);
    FAIL() << "expected an error";
  } catch (const ms::ResolveError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  fs::remove_all(cache);
}

TEST(HubHttp, QuotesLikePython) {
  EXPECT_EQ(ms::url_quote("a b/c~d.e-f_g"), "a%20b/c~d.e-f_g");
  EXPECT_EQ(ms::url_quote("refs/pr/1", ""), "refs%2Fpr%2F1");
  EXPECT_EQ(ms::human_bytes(999), "999 B");
  EXPECT_EQ(ms::human_bytes(16'060'000'000), "16.1 GB");
}

TEST(HubHttp, Sha256OfAFile) {
  const fs::path d = fresh_dir("sha");
  write(d / "abc", "abc");
  EXPECT_EQ(ms::sha256_of_file(d / "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  fs::remove_all(d);
}

// A download whose writes fail with ENOSPC (/dev/full) stops with that errno, which blob_fetch
// reports as "disk full"; the transfer itself is a local file:// URL, so no network is needed.
TEST(HubHttp, FullDiskStopsTheTransferWithEnospc) {
  const fs::path d = fresh_dir("full");
  write(d / "data", std::string(100000, 'x'));
  const int fd = ::open("/dev/full", O_WRONLY);
  if (fd < 0) GTEST_SKIP() << "no /dev/full";
  ms::HubHttp http(ms::HubSettings::from_env(env_of({})));
  std::atomic<bool> cancel{false};
  int64_t written = 0;
  try {
    http.download("file://" + (d / "data").string(), fd, 0, [](long) { return true; },
                  [&](int64_t n) { written += n; }, cancel);
    FAIL() << "expected ENOSPC";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOSPC);
  }
  EXPECT_EQ(written, 0);
  ::close(fd);
  fs::remove_all(d);
}
