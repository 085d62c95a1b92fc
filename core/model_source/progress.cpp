// Download progress bars and log lines (see progress.h).
#include "core/model_source/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "core/util/log.h"

namespace sable::model_source {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDrawEvery = std::chrono::milliseconds(100);
constexpr auto kLogEvery = std::chrono::seconds(10);
constexpr int kBarWidth = 16;
constexpr size_t kNameWidth = 28;  // a bar line stays within 80 columns

}  // namespace

std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

bool ProgressBoard::stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBoard::ProgressBoard(bool tty) : tty_(tty) {}

int ProgressBoard::start(const std::string& name, int64_t total, int64_t already) {
  std::lock_guard lock(mutex_);
  File f;
  f.name = name;
  f.total = total;
  f.done = f.resumed_from = already;
  f.started = f.last_line = Clock::now();
  files_.push_back(f);
  if (tty_) {
    draw_locked(true);
  } else if (already > 0) {
    log::info("download: {} ({}), resuming at {}", name, human_bytes(total), human_bytes(already));
  } else {
    log::info("download: {} ({})", name, total >= 0 ? human_bytes(total) : "size unknown");
  }
  return static_cast<int>(files_.size()) - 1;
}

void ProgressBoard::advance(int slot, int64_t bytes) {
  std::lock_guard lock(mutex_);
  File& f = files_[slot];
  f.done += bytes;
  if (tty_) {
    draw_locked(false);
  } else if (Clock::now() - f.last_line >= kLogEvery) {
    f.last_line = Clock::now();
    log::info("download: {} {} of {}", f.name, human_bytes(f.done), human_bytes(f.total));
  }
}

void ProgressBoard::rewind(int slot, int64_t bytes) {
  std::lock_guard lock(mutex_);
  files_[slot].done = files_[slot].resumed_from = bytes;
}

void ProgressBoard::finish(int slot, bool ok) {
  std::lock_guard lock(mutex_);
  File& f = files_[slot];
  f.state = ok ? 1 : 2;
  f.ended = Clock::now();
  if (tty_) {
    draw_locked(true);
    return;
  }
  if (!ok) return;  // the error itself is reported by the caller
  log::info("download: {} done, {} in {:.1f} s ({}/s)", f.name, human_bytes(f.done),
            std::chrono::duration<double>(f.ended - f.started).count(),
            human_bytes(static_cast<int64_t>(rate_of(f))));
}

double ProgressBoard::rate_of(const File& f) {
  const auto end = f.state == 0 ? Clock::now() : f.ended;
  const double s = std::chrono::duration<double>(end - f.started).count();
  return s > 0 ? static_cast<double>(f.done - f.resumed_from) / s : 0;
}

void ProgressBoard::draw_locked(bool force) {
  if (!force && Clock::now() - last_draw_ < kDrawEvery) return;
  last_draw_ = Clock::now();
  std::string out;
  if (lines_drawn_ > 0) out += fmt::format("\x1b[{}A", lines_drawn_);  // back to the first bar
  for (const File& f : files_) {
    const double frac = f.total > 0 ? static_cast<double>(f.done) / static_cast<double>(f.total)
                                    : (f.state == 1 ? 1.0 : 0.0);
    const int filled = static_cast<int>(frac * kBarWidth + 0.5);
    const double rate = rate_of(f);
    const char* tail = f.state == 1 ? "done" : f.state == 2 ? "FAILED" : "";
    const std::string name =  // the end of a long name: the file, not the repo, tells bars apart
        f.name.size() <= kNameWidth ? f.name : "..." + f.name.substr(f.name.size() - kNameWidth + 3);
    out += fmt::format("\x1b[2K{:<{}} [{}{}] {:>3.0f}% {:>8} {:>8}/s {}\n", name, kNameWidth,
                       std::string(filled, '#'), std::string(kBarWidth - filled, '.'), frac * 100,
                       human_bytes(f.done), human_bytes(static_cast<int64_t>(rate)), tail);
  }
  lines_drawn_ = static_cast<int>(files_.size());
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace sable::model_source
