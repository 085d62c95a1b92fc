// `sable download ORG/NAME [--revision R] [--tokenizer-only]`: fills the Hugging Face cache with what
// Sable needs of a Hub repo (config, tokenizer, chat template, safetensors weights) without serving,
// then prints the snapshot folder on stdout. Unlike serve/generate, which use a complete cached
// snapshot with no request, it always asks the Hub which commit the revision names now.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/cli/command.h"
#include "core/model_source/resolve_model.h"
#include "core/util/log.h"

namespace sable::cli {
namespace {

class DownloadCommand : public Command {
 public:
  explicit DownloadCommand(CLI::App& parent)
      : Command(parent.add_subcommand(
            "download", "Download a Hugging Face Hub model into the local cache (no serving)")) {
    app()->add_option("repo", repo_, "Hub id ORG/NAME")->required();
    app()->add_option("--revision", revision_, "Branch, tag or commit")->default_val("main");
    app()->add_flag("--tokenizer-only", tokenizer_only_, "Only the tokenizer and config files");
    app()->add_option("--log-level", log_level_, "trace|debug|info|warning|error")
        ->default_val("info");
  }

  int run() override {
    log::setup(log::parse_level(log_level_).value_or(log::Level::kInfo));
    model_source::ResolveOptions options;
    options.revision = revision_;
    options.refresh = true;
    options.want = tokenizer_only_ ? model_source::Want::kTokenizer : model_source::Want::kModel;
    const auto source = model_source::resolve_model(repo_, options);
    if (source.repo_id.empty()) {
      throw model_source::ResolveError(repo_ + " is a local path, not a Hub id: nothing to download");
    }
    std::printf("%s\n", source.path.string().c_str());
    return 0;
  }

 private:
  std::string repo_, revision_ = "main", log_level_ = "info";
  bool tokenizer_only_ = false;
};

}  // namespace

std::unique_ptr<Command> make_download_command(CLI::App& parent) {
  return std::make_unique<DownloadCommand>(parent);
}

}  // namespace sable::cli
