// Progress reporting for long work (building a package, quantizing, writing a
// checkpoint). On a terminal it draws one self-updating bar with an ETA; when
// stderr is not a terminal it prints a plain line at every 10 % step; in quiet
// mode it prints nothing. Library code receives a Progress& and calls advance();
// the CLI decides the mode from --quiet / --json / isatty.
//
// Thread-safety: not thread-safe; one Progress belongs to one worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace q3vl {

enum class ProgressMode {
  automatic,  // bar if the stream is a terminal, lines otherwise
  bar,
  lines,
  quiet,
};

enum class ProgressUnit { items, bytes };

class Progress {
 public:
  // `total` is in `unit`s (0 = unknown; then no percentage or ETA is shown).
  Progress(std::string label, std::uint64_t total, ProgressUnit unit = ProgressUnit::items,
           ProgressMode mode = ProgressMode::automatic, std::FILE* stream = stderr);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Adds `amount` to the work done; `item` names what is being worked on (a tensor name).
  void advance(std::uint64_t amount, std::string_view item = {});
  // A line of its own between updates, for a phase the byte count does not show (e.g. the
  // calibration prompts of a gptq build). Not shown when quiet.
  void note(std::string_view message);
  // Marks the work complete and ends the bar's line. Idempotent; the destructor calls it.
  void finish();

  // A reporter that prints nothing, for callers that do not care.
  static Progress& silent();

 private:
  void draw(bool force);

  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  ProgressUnit unit_;
  ProgressMode mode_;
  std::FILE* stream_;
  std::string item_;
  int last_decile_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// Resolves `automatic` for a stream (bar on a TTY, lines otherwise).
ProgressMode resolve_progress_mode(ProgressMode mode, std::FILE* stream);

}  // namespace q3vl
