// Markdown and JSON renderings of a KlReport.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <sstream>

#include "q3vl/quality.h"

namespace q3vl {
namespace {

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

double bytes_per_weight(const BenchPackage& p) {
  return p.linear_weights > 0 ? static_cast<double>(p.linear_weight_bytes) / static_cast<double>(p.linear_weights) : 0.0;
}

std::string label(const BenchPackage& p) {
  return p.decoder_precision + (p.quantization.empty() ? "" : " " + p.quantization);
}

nlohmann::ordered_json stats_json(const KlStats& s) {
  return {{"tokens", s.tokens},   {"mean_kl", s.mean_kl}, {"kl_stderr", s.kl_stderr},
          {"max_kl", s.max_kl},   {"p99_kl", s.p99_kl},   {"top1_agreement", s.top1_agreement}};
}

nlohmann::ordered_json package_json(const BenchPackage& p) {
  return {{"path", p.path},
          {"decoder_precision", p.decoder_precision},
          {"quantization", p.quantization},
          {"linear_weight_bytes", p.linear_weight_bytes},
          {"linear_weights", p.linear_weights},
          {"linear_bytes_per_weight", bytes_per_weight(p)},
          {"decoder_weight_bytes", p.decoder_weight_bytes}};
}

}  // namespace

std::string format_kl_markdown(const KlReport& r) {
  std::ostringstream out;
  out << "q3vl eval-kl: " << r.test.path << " (" << label(r.test) << ", " << fixed(bytes_per_weight(r.test), 4)
      << " byte/weight) against " << r.reference.path << " (" << label(r.reference) << ", "
      << fixed(bytes_per_weight(r.reference), 4) << " byte/weight)\n\n";
  out << "- text: " << r.chunks << " chunks of " << r.context << " tokens (of " << r.text_tokens
      << "), second half of each scored\n";
  out << "- machine: " << r.machine.cpu << "; q3vl " << r.machine.q3vl_commit << ", ONNX Runtime "
      << r.machine.ort_version << "\n\n";
  out << "| set | tokens | mean KL ± se | p99 KL | max KL | top-1 agreement |\n|---|---:|---:|---:|---:|---:|\n";
  const std::pair<const char*, const KlStats*> sets[] = {{"text", &r.text}, {"images", &r.images}, {"all", &r.all}};
  for (const auto& [name, s] : sets) {
    out << "| " << name << " | " << s->tokens << " | " << fixed(s->mean_kl, 6) << " ± " << fixed(s->kl_stderr, 6)
        << " | " << fixed(s->p99_kl, 6) << " | " << fixed(s->max_kl, 6) << " | "
        << fixed(100.0 * s->top1_agreement, 2) << " % |\n";
  }
  return out.str();
}

std::string format_kl_json(const KlReport& r) {
  nlohmann::ordered_json j;
  j["machine"] = {{"cpu", r.machine.cpu}, {"q3vl_commit", r.machine.q3vl_commit}, {"ort_version", r.machine.ort_version}};
  j["reference"] = package_json(r.reference);
  j["test"] = package_json(r.test);
  j["context"] = r.context;
  j["chunks"] = r.chunks;
  j["text_tokens"] = r.text_tokens;
  j["text"] = stats_json(r.text);
  j["images"] = stats_json(r.images);
  j["all"] = stats_json(r.all);
  return j.dump(1) + "\n";
}

}  // namespace q3vl
