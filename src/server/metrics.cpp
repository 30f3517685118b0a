#include "server/metrics.h"

#include <cstdio>

namespace q3vl::server {
namespace {

std::string number(double x) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.9g", x);
  return buffer;
}

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         number(value) + "\n";
}

}  // namespace

void Histogram::observe(double seconds) {
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) {
      ++buckets_[i];
      break;
    }
  }
  ++count_;
  sum_ += seconds;
}

void Histogram::write(std::string& out, const std::string& name) const {
  std::int64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i];
    out += name + "_bucket{le=\"" + number(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

void Metrics::count_response(int status) {
  std::lock_guard lock(mutex_);
  ++responses_[status];
}

void Metrics::observe_ttft(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(seconds);
}

void Metrics::observe_token_latency(double seconds) {
  std::lock_guard lock(mutex_);
  token_latency_.observe(seconds);
}

void Metrics::count_disconnect() {
  std::lock_guard lock(mutex_);
  ++disconnects_;
}

std::string Metrics::render(const SchedulerStats* stats, bool ready) const {
  std::lock_guard lock(mutex_);
  std::string out;
  metric(out, "q3vl_ready", "gauge", "1 once the model is loaded", ready ? 1 : 0);
  out += "# HELP q3vl_http_responses_total Chat completion responses by HTTP status\n"
         "# TYPE q3vl_http_responses_total counter\n";
  for (const auto& [status, n] : responses_) {
    out += "q3vl_http_responses_total{status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  metric(out, "q3vl_client_disconnects_total", "counter", "Streams cancelled because the client disconnected",
         static_cast<double>(disconnects_));
  out += "# HELP q3vl_time_to_first_token_seconds Request received to first token\n"
         "# TYPE q3vl_time_to_first_token_seconds histogram\n";
  ttft_.write(out, "q3vl_time_to_first_token_seconds");
  out += "# HELP q3vl_inter_token_latency_seconds Time between consecutive tokens of a request\n"
         "# TYPE q3vl_inter_token_latency_seconds histogram\n";
  token_latency_.write(out, "q3vl_inter_token_latency_seconds");
  if (stats != nullptr) {
    const SchedulerStats& s = *stats;
    metric(out, "q3vl_requests_total", "counter", "Requests the scheduler accepted", static_cast<double>(s.requests_total));
    metric(out, "q3vl_prompt_tokens_total", "counter", "Prompt tokens (incl. image and video tokens)",
           static_cast<double>(s.prompt_tokens_total));
    metric(out, "q3vl_cached_prompt_tokens_total", "counter", "Prompt tokens reused from a slot's KV cache",
           static_cast<double>(s.cached_prompt_tokens_total));
    metric(out, "q3vl_completion_tokens_total", "counter", "Generated tokens",
           static_cast<double>(s.completion_tokens_total));
    metric(out, "q3vl_decode_steps_total", "counter", "Batched decoder calls", static_cast<double>(s.decode_steps_total));
    metric(out, "q3vl_queue_depth", "gauge", "Requests waiting for a slot", static_cast<double>(s.queued));
    metric(out, "q3vl_slots_active", "gauge", "Slots generating", static_cast<double>(s.active_slots));
    metric(out, "q3vl_slots_total", "gauge", "Slots (--parallel)", static_cast<double>(s.slots));
    metric(out, "q3vl_kv_tokens_used", "gauge", "KV cache tokens held, all slots", static_cast<double>(s.kv_tokens_used));
    metric(out, "q3vl_kv_tokens_capacity", "gauge", "KV cache tokens, all slots",
           static_cast<double>(s.kv_tokens_capacity));
    metric(out, "q3vl_kv_bytes", "gauge", "KV cache memory allocated", static_cast<double>(s.kv_bytes));
  }
  return out;
}

}  // namespace q3vl::server
