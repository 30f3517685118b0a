// Server metrics in the Prometheus text exposition format (GET /metrics).
// Counters and latency histograms are kept here; the scheduler's own figures (queue
// depth, slot use, KV use, token totals) are read from a SchedulerStats snapshot.
// Thread-safety: every member function may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "q3vl/scheduler.h"

namespace q3vl::server {

class Histogram {
 public:
  // Upper bounds in seconds (the +Inf bucket is implicit).
  static constexpr std::array<double, 12> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                     0.5,   1.0,  2.5,   5.0,  10.0, 30.0};
  void observe(double seconds);
  // Appends the `name_bucket` / `name_sum` / `name_count` lines.
  void write(std::string& out, const std::string& name) const;

 private:
  std::array<std::int64_t, kBounds.size()> buckets_{};  // non-cumulative
  std::int64_t count_ = 0;
  double sum_ = 0.0;
};

class Metrics {
 public:
  void count_response(int status);     // every HTTP response of /v1/chat/completions
  void observe_ttft(double seconds);   // request received -> first token
  void observe_token_latency(double seconds);  // between consecutive tokens of one stream
  void count_disconnect();             // streams cancelled because the client went away
  // The whole exposition text; `stats` is null while the model loads.
  std::string render(const SchedulerStats* stats, bool ready) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, std::int64_t> responses_;
  std::int64_t disconnects_ = 0;
  Histogram ttft_;
  Histogram token_latency_;
};

}  // namespace q3vl::server
