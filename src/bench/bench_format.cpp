// Markdown, JSON and CSV renderings of a BenchReport, and the --image size parser.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "q3vl/bench.h"
#include "q3vl/error.h"

namespace q3vl {
namespace {

std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

std::string mean_sd(const BenchStat& s, int digits) { return fixed(s.mean, digits) + " ± " + fixed(s.sd, digits); }

std::string size_name(const BenchImageSize& s) { return std::to_string(s.width) + "x" + std::to_string(s.height); }

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

double mb(std::int64_t bytes) { return static_cast<double>(bytes) / 1e6; }

double bytes_per_weight(const BenchPackage& p) {
  return p.linear_weights > 0 ? static_cast<double>(p.linear_weight_bytes) / static_cast<double>(p.linear_weights) : 0.0;
}

nlohmann::ordered_json stat_json(const BenchStat& s) {
  return {{"mean", s.mean}, {"sd", s.sd}, {"samples", s.samples}};
}

// One measured figure: the unit of every rendering's rows.
struct Row {
  std::string test;    // "pp512", "tg128", "vision 448x448", "ttft 448x448"
  std::string metric;  // JSON-style name of the figure
  std::string unit;
  std::int64_t tokens;
  const BenchStat* stat;
};

std::vector<Row> rows(const BenchReport& r) {
  std::vector<Row> out;
  for (const auto& p : r.prefill) {
    out.push_back({"pp" + std::to_string(p.prompt_tokens), "prefill_tokens_per_s", "tok/s", p.prompt_tokens, &p.tokens_per_s});
  }
  for (const auto& d : r.decode) {
    const std::string test = "tg" + std::to_string(d.tokens) + " @ " + std::to_string(d.context_tokens);
    out.push_back({test, "decode_tokens_per_s", "tok/s", d.tokens, &d.tokens_per_s});
    out.push_back({test, "decode_weight_gb_per_s", "GB/s", d.tokens, &d.weight_gb_per_s});
    out.push_back({test, "decode_read_gb_per_s", "GB/s", d.tokens, &d.read_gb_per_s});
  }
  for (const auto& i : r.images) {
    out.push_back({"vision " + size_name(i.size), "vision_ms", "ms", i.image_tokens, &i.vision_ms});
    out.push_back({"ttft " + size_name(i.size), "ttft_ms", "ms", i.prompt_tokens, &i.ttft_ms});
  }
  return out;
}

// The markdown table has no metric column: the unit says which bytes the two decode GB/s
// rows count.
std::string markdown_unit(const Row& row) {
  if (row.metric == "decode_weight_gb_per_s") return row.unit + " (weights)";
  if (row.metric == "decode_read_gb_per_s") return row.unit + " (weights + K/V rows)";
  return row.unit;
}

std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string format_bench_markdown(const BenchReport& r) {
  const BenchMachine& m = r.machine;
  const BenchPackage& p = r.package;
  std::ostringstream out;
  out << "q3vl bench: " << p.path << " (decoder " << p.decoder_precision
      << (p.quantization.empty() ? "" : ", " + p.quantization) << "; vision "
      << (p.has_vision ? p.vision_precision : "absent") << ")\n\n";
  out << "- machine: " << m.cpu << ", " << m.logical_cpus << " logical CPUs, " << join(m.isa, " ") << "; Linux "
      << m.kernel << "\n";
  out << "- software: q3vl " << m.q3vl_version << " (" << m.q3vl_commit << "), ONNX Runtime " << m.ort_version << "\n";
  out << "- run: " << (r.threads > 0 ? std::to_string(r.threads) : std::string("default")) << " threads, spinning "
      << (r.spinning ? "on" : "off") << ", " << r.repetitions << " repetitions after " << r.warmup
      << " warm-up, started " << r.started_utc << "\n";
  out << "- decoder weights read per decode token: " << fixed(mb(p.decoder_weight_bytes), 1)
      << " MB (every decoder.onnx initializer; linear layers " << fixed(mb(p.linear_weight_bytes), 1) << " MB for "
      << p.linear_weights << " weights = " << fixed(bytes_per_weight(p), 4) << " byte/weight); KV cache "
      << p.kv_bytes_per_token << " bytes per context token (decode_read_gb_per_s counts the weights and the K/V rows "
         "each step attends over)\n";
  out << "- load " << fixed(r.load_ms, 0) << " ms, peak RSS " << fixed(mb(r.peak_rss_bytes), 1) << " MB\n\n";
  out << "| test | tokens | value | unit |\n|---|---:|---:|---|\n";
  for (const Row& row : rows(r)) {
    const int digits = row.unit == "GB/s" ? 2 : row.unit == "ms" ? 1 : 2;
    out << "| " << row.test << " | " << row.tokens << " | " << mean_sd(*row.stat, digits) << " | " << markdown_unit(row)
        << " |\n";
  }
  return out.str();
}

std::string format_bench_json(const BenchReport& r) {
  const BenchMachine& m = r.machine;
  const BenchPackage& p = r.package;
  nlohmann::ordered_json j;
  j["machine"] = {{"cpu", m.cpu},     {"logical_cpus", m.logical_cpus}, {"isa", m.isa},
                  {"kernel", m.kernel}, {"q3vl_version", m.q3vl_version}, {"q3vl_commit", m.q3vl_commit},
                  {"ort_version", m.ort_version}};
  j["package"] = {{"path", p.path},
                  {"decoder_precision", p.decoder_precision},
                  {"vision_precision", p.vision_precision},
                  {"quantization", p.quantization},
                  {"has_vision", p.has_vision},
                  {"decoder_weight_bytes", p.decoder_weight_bytes},
                  {"linear_weight_bytes", p.linear_weight_bytes},
                  {"linear_weights", p.linear_weights},
                  {"linear_bytes_per_weight", bytes_per_weight(p)},
                  {"kv_bytes_per_token", p.kv_bytes_per_token}};
  j["config"] = {{"threads", r.threads}, {"spinning", r.spinning}, {"repetitions", r.repetitions},
                 {"warmup", r.warmup}, {"started_utc", r.started_utc}};
  j["load_ms"] = r.load_ms;
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  j["prefill"] = nlohmann::ordered_json::array();
  for (const auto& x : r.prefill) {
    j["prefill"].push_back({{"prompt_tokens", x.prompt_tokens}, {"ms", stat_json(x.ms)},
                            {"tokens_per_s", stat_json(x.tokens_per_s)}});
  }
  j["decode"] = nlohmann::ordered_json::array();
  for (const auto& x : r.decode) {
    j["decode"].push_back({{"context_tokens", x.context_tokens}, {"tokens", x.tokens},
                           {"tokens_per_s", stat_json(x.tokens_per_s)},
                           {"weight_gb_per_s", stat_json(x.weight_gb_per_s)},
                           {"read_bytes_per_token", x.read_bytes_per_token},
                           {"read_gb_per_s", stat_json(x.read_gb_per_s)}});
  }
  j["images"] = nlohmann::ordered_json::array();
  for (const auto& x : r.images) {
    j["images"].push_back({{"width", x.size.width}, {"height", x.size.height}, {"image_tokens", x.image_tokens},
                           {"prompt_tokens", x.prompt_tokens}, {"vision_ms", stat_json(x.vision_ms)},
                           {"ttft_ms", stat_json(x.ttft_ms)}});
  }
  return j.dump(1) + "\n";
}

std::string format_bench_csv(const BenchReport& r) {
  std::ostringstream out;
  out << "test,metric,unit,tokens,mean,sd,repetitions,threads,cpu,isa,q3vl_commit,ort_version,decoder_precision,"
         "quantization,decoder_weight_bytes,peak_rss_bytes\n";
  for (const Row& row : rows(r)) {
    out << csv_field(row.test) << ',' << row.metric << ',' << row.unit << ',' << row.tokens << ','
        << fixed(row.stat->mean, 4) << ',' << fixed(row.stat->sd, 4) << ',' << row.stat->samples.size() << ','
        << r.threads << ',' << csv_field(r.machine.cpu) << ',' << csv_field(join(r.machine.isa, " ")) << ','
        << r.machine.q3vl_commit << ',' << r.machine.ort_version << ',' << r.package.decoder_precision << ','
        << csv_field(r.package.quantization) << ',' << r.package.decoder_weight_bytes << ',' << r.peak_rss_bytes
        << '\n';
  }
  return out.str();
}

std::vector<BenchImageSize> parse_bench_image_sizes(const std::string& text, const std::string& flag) {
  std::vector<BenchImageSize> sizes;
  if (text.empty() || text == "none") return sizes;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    BenchImageSize s;
    const auto x = item.find('x');
    std::size_t used_w = 0, used_h = 0;
    try {
      if (x == std::string::npos) throw std::invalid_argument(item);
      s.width = std::stoll(item.substr(0, x), &used_w);
      s.height = std::stoll(item.substr(x + 1), &used_h);
    } catch (const std::exception&) {
      used_w = 0;
    }
    if (used_w == 0 || used_w != x || used_h != item.size() - x - 1 || s.width < 1 || s.height < 1) {
      throw_error(ErrorKind::usage, "", flag, "WIDTHxHEIGHT items with sides >= 1 (e.g. 448x448,1024x768)",
                  "\"" + item + "\"");
    }
    sizes.push_back(s);
  }
  return sizes;
}

}  // namespace q3vl
