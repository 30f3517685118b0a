#include "q3vl/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>

namespace q3vl {
namespace {

std::string format_amount(std::uint64_t amount, ProgressUnit unit) {
  char text[32];
  if (unit == ProgressUnit::bytes) {
    const double value = static_cast<double>(amount);
    if (value >= 1e9) std::snprintf(text, sizeof text, "%.2f GB", value / 1e9);
    else if (value >= 1e6) std::snprintf(text, sizeof text, "%.1f MB", value / 1e6);
    else std::snprintf(text, sizeof text, "%.0f kB", value / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%" PRIu64, amount);
  }
  return text;
}

std::string format_duration(double seconds) {
  char text[32];
  const auto total = static_cast<long>(seconds + 0.5);
  std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  return text;
}

}  // namespace

ProgressMode resolve_progress_mode(ProgressMode mode, std::FILE* stream) {
  if (mode != ProgressMode::automatic) return mode;
  return isatty(fileno(stream)) ? ProgressMode::bar : ProgressMode::lines;
}

Progress::Progress(std::string label, std::uint64_t total, ProgressUnit unit, ProgressMode mode,
                   std::FILE* stream)
    : label_(std::move(label)),
      total_(total),
      unit_(unit),
      mode_(resolve_progress_mode(mode, stream)),
      stream_(stream),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

Progress& Progress::silent() {
  static Progress quiet("", 0, ProgressUnit::items, ProgressMode::quiet);
  return quiet;
}

void Progress::advance(std::uint64_t amount, std::string_view item) {
  done_ += amount;
  if (!item.empty()) item_.assign(item);
  draw(false);
}

void Progress::finish() {
  if (finished_ || mode_ == ProgressMode::quiet) {
    finished_ = true;
    return;
  }
  if (total_ > 0) done_ = std::max(done_, total_);
  item_.clear();
  draw(true);
  if (mode_ == ProgressMode::bar) std::fputc('\n', stream_);
  std::fflush(stream_);
  finished_ = true;
}

void Progress::note(std::string_view message) {
  if (mode_ == ProgressMode::quiet || finished_) return;
  const char* clear = mode_ == ProgressMode::lines ? "" : "\r\033[K";
  std::fprintf(stream_, "%s%s: %.*s\n", clear, label_.c_str(), static_cast<int>(message.size()), message.data());
  std::fflush(stream_);
  if (mode_ != ProgressMode::lines) draw(true);
}

void Progress::draw(bool force) {
  if (mode_ == ProgressMode::quiet || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction =
      total_ > 0 ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 0.0;

  if (mode_ == ProgressMode::lines) {
    const int decile = static_cast<int>(fraction * 10.0);
    if (!force && (total_ == 0 || decile == last_decile_)) return;
    last_decile_ = decile;
    std::fprintf(stream_, "%s: %3d%% (%s) %s elapsed\n", label_.c_str(),
                 static_cast<int>(fraction * 100.0), format_amount(done_, unit_).c_str(),
                 format_duration(elapsed).c_str());
    std::fflush(stream_);
    return;
  }

  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 28;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::string eta = "--:--";
  if (fraction > 0.0 && fraction < 1.0) eta = format_duration(elapsed * (1.0 - fraction) / fraction);
  if (fraction >= 1.0) eta = format_duration(elapsed);
  std::string item = item_.size() > 40 ? "..." + item_.substr(item_.size() - 37) : item_;
  std::fprintf(stream_, "\r\033[K%s [%s] %3d%% %s%s%s %s %s", label_.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100.0), format_amount(done_, unit_).c_str(),
               total_ > 0 ? " / " : "", total_ > 0 ? format_amount(total_, unit_).c_str() : "",
               fraction >= 1.0 ? "in" : "ETA", eta.c_str());
  if (!item.empty()) std::fprintf(stream_, " %s", item.c_str());
  std::fflush(stream_);
}

}  // namespace q3vl
