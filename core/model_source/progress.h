// Download progress for people: on a terminal one bar per file, redrawn in place at most ten times
// a second; elsewhere (CI logs, a service's journal) plain log lines when a file starts, every
// 10 s while it runs, and when it ends. Thread-safe: the download workers all report here.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sable::model_source {

class ProgressBoard {
 public:
  // tty: draw bars on stderr; otherwise log lines.
  explicit ProgressBoard(bool tty);

  // A file starts: `total` bytes in all (-1: unknown), `already` of them on disk (a resume).
  // Returns its slot for the calls below.
  int start(const std::string& name, int64_t total, int64_t already);
  void advance(int slot, int64_t bytes);
  // Back to `bytes` done (the server ignored a Range request and the file restarts).
  void rewind(int slot, int64_t bytes);
  void finish(int slot, bool ok);

  // Whether stderr is a terminal.
  static bool stderr_is_tty();

 private:
  struct File {
    std::string name;
    int64_t total = -1, done = 0, resumed_from = 0;
    std::chrono::steady_clock::time_point started, last_line, ended;
    int state = 0;  // 0 running, 1 done, 2 failed
  };
  void draw_locked(bool force);
  static double rate_of(const File& f);  // bytes per second of this run

  const bool tty_;
  std::mutex mutex_;
  std::vector<File> files_;
  int lines_drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1.5 GB", "340 kB", "12 B" (decimal units, as the Hub's pages).
std::string human_bytes(int64_t bytes);

}  // namespace sable::model_source
