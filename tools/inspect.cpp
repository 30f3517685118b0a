// q3vl inspect: prints a package's manifest and each graph's IO, and creates an ONNX
// Runtime session per graph (non-zero exit if any fails or its IO differs from q3vl.json).
// An ONNX Runtime GenAI package (genai_config.json, no q3vl.json) gets its config checked
// against its graphs instead (runtime/genai_package_check.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "io/json_file.h"
#include "io/manifest.h"
#include "q3vl/bench.h"
#include "q3vl/error.h"
#include "q3vl/package.h"
#include "runtime/genai_package_check.h"
#include "runtime/ort_session.h"
#include "subcommand.h"

namespace q3vl::tools {
namespace {

std::string shape_text(const std::vector<std::string>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + shape[i];
  return s + "]";
}

// The session's IO must be what the manifest promises (names, dtypes, shapes).
std::vector<std::string> compare_io(const std::vector<PackageTensor>& expected,
                                    const std::vector<runtime::TensorInfo>& actual, const char* kind) {
  std::vector<std::string> problems;
  if (expected.size() != actual.size()) {
    problems.push_back(std::string(kind) + " count: manifest " + std::to_string(expected.size()) + ", session " +
                       std::to_string(actual.size()));
    return problems;
  }
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const auto& a = actual[i];
    const std::string got = a.name + " " + runtime::element_type_name(a.element_type) + " " + runtime::format_shape(a);
    const std::string want = e.name + " " + e.dtype + " " + shape_text(e.shape);
    if (got != want) problems.push_back(std::string(kind) + " " + std::to_string(i) + ": manifest " + want + ", session " + got);
  }
  return problems;
}

// An ONNX Runtime GenAI package (`q3vl build --target ort-genai`): its config against its graphs.
int inspect_genai_package(const std::filesystem::path& dir, bool json) {
  const runtime::GenaiPackageReport report = runtime::check_genai_package(dir);
  if (json) {
    io::Json j;
    j["format"] = "onnxruntime-genai";
    j["model_type"] = report.model_type;
    j["hidden_size"] = report.hidden_size;
    j["graphs"] = io::Json::array();
    for (const auto& g : report.graphs) j["graphs"].push_back(io::Json{{"section", g.section}, {"file", g.file}});
    j["problems"] = report.problems;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("package %s\n  ONNX Runtime GenAI package (genai_config.json), model %s, decoder.hidden_size %lld\n",
                dir.string().c_str(), report.model_type.c_str(), static_cast<long long>(report.hidden_size));
    for (const auto& g : report.graphs) {
      std::printf("graph %s (%s)\n", g.section.c_str(), g.file.c_str());
      for (const auto& t : g.inputs) {
        std::printf("  in  %-28s %-8s %s\n", t.name.c_str(), runtime::element_type_name(t.element_type),
                    runtime::format_shape(t).c_str());
      }
      for (const auto& t : g.outputs) {
        std::printf("  out %-28s %-8s %s\n", t.name.c_str(), runtime::element_type_name(t.element_type),
                    runtime::format_shape(t).c_str());
      }
    }
    for (const auto& p : report.problems) std::printf("  problem: %s\n", p.c_str());
    std::printf("config vs graphs: %s\n", report.problems.empty() ? "ok" : "FAILED");
  }
  if (!report.problems.empty()) {
    throw_error(ErrorKind::format, (dir / runtime::kGenaiConfigName).string(), "",
                "a config that matches its graphs", std::to_string(report.problems.size()) + " problem(s)");
  }
  return 0;
}

// How the vision attention multiplies, read from the graph's ops: its qkv projection
// (q3vl.Bf16Linear or fp32) and its two products (q3vl.Bf16Attention or fp32). Packages
// built before those ops existed keep fp32 at the same precision names. "unknown" when
// the graph cannot be read (the per-graph report then says why).
std::string vision_attention_form(const std::filesystem::path& dir, const PackageManifest& manifest) {
  for (const auto& graph : manifest.graphs) {
    if (graph.name != "vision") continue;
    try {
      bool linear = false, attention = false;
      for (const auto& [op, count] : graph_domain_ops(dir / graph.file)) {
        linear = linear || op == "q3vl.Bf16Linear";
        attention = attention || op == "q3vl.Bf16Attention";
      }
      if (linear && attention) return "qkv and attention bf16 (q3vl.Bf16Linear, q3vl.Bf16Attention)";
      if (linear) return "qkv bf16 (q3vl.Bf16Linear), attention fp32";
      if (attention) return "qkv fp32, attention bf16 (q3vl.Bf16Attention)";
      return "qkv and attention fp32";
    } catch (const Error&) {
      return "attention unknown";
    }
  }
  return "attention unknown";  // not reached: callers ask only when there is a vision graph
}

RunFunction setup_inspect(CLI::App& command) {
  auto dir = std::make_shared<std::filesystem::path>();
  auto json = std::make_shared<bool>(false);
  auto verify = std::make_shared<bool>(false);
  command.add_option("package", *dir, "Package directory (written by q3vl build)")->required();
  command.add_flag("--json", *json, "Print the manifest plus a per-graph session report as JSON");
  command.add_flag("--verify", *verify, "Also check every file's size and sha256");

  return [dir, json, verify]() {
    if (runtime::is_genai_package(*dir) && !std::filesystem::exists(*dir / kManifestFileName)) {
      if (*verify) {
        throw_error(ErrorKind::usage, dir->string(), "--verify",
                    "a q3vl package (its q3vl.json lists every file's sha256)", "an ONNX Runtime GenAI package");
      }
      return inspect_genai_package(*dir, *json);
    }
    const PackageManifest manifest = load_package_manifest(*dir);
    check_package_file_sizes(*dir, manifest);
    if (*verify) verify_package_files(*dir, manifest);
    io::Json report = io::Json::array();
    int failures = 0;
    if (!*json) {
      // A --no-vision package still records the precision its vision tower would have had.
      const bool has_vision = std::any_of(manifest.graphs.begin(), manifest.graphs.end(),
                                          [](const PackageGraph& g) { return g.name == "vision"; });
      std::printf("package %s\n  format %d, builder %s, model %s\n  decoder %s, vision %s, logits %s\n",
                  dir->string().c_str(), manifest.format_version, manifest.builder_version.c_str(),
                  manifest.model_type.c_str(), manifest.decoder_precision.c_str(),
                  has_vision ? manifest.vision_precision.c_str() : "absent", manifest.logits_mode.c_str());
      std::printf("  layers %lld, kv heads %lld, head_dim %lld, hidden %lld, vocab %lld, deepstack %lld\n",
                  static_cast<long long>(manifest.num_hidden_layers), static_cast<long long>(manifest.num_key_value_heads),
                  static_cast<long long>(manifest.head_dim), static_cast<long long>(manifest.hidden_size),
                  static_cast<long long>(manifest.vocab_size), static_cast<long long>(manifest.deepstack_layers));
      std::printf("  kv cache %s\n", manifest.kv_cache_dtype.c_str());
      if (!manifest.quantization.kernels.empty()) {
        std::printf("  quantization %s, block %lld, %s, kernels %s\n", manifest.quantization.method.c_str(),
                    static_cast<long long>(manifest.quantization.block_size),
                    manifest.quantization.symmetric ? "symmetric" : "asymmetric",
                    manifest.quantization.kernels == "q3vl" ? "q3vl (its q3vl.* ops: see ops below)"
                                                            : "ort (com.microsoft.MatMulNBits)");
      }
      if (!manifest.quantization.recipe.empty()) {
        std::printf("  %s %s\n", manifest.quantization.fake_quant ? "fake-quantized recipe" : "recipe",
                    manifest.quantization.recipe.c_str());
      }
      if (has_vision && (manifest.vision_precision == "q8" || manifest.vision_precision == "int8")) {
        const std::string attention = vision_attention_form(*dir, manifest);
        if (manifest.vision_precision == "q8") {
          std::printf("  vision kernels q3vl (q3vl.QuantLinear: 8-bit weights, int8 activations per 32 values; %s)\n",
                      attention.c_str());
        } else {
          std::printf("  vision kernels ort (com.microsoft.DynamicQuantizeMatMul; %s)\n", attention.c_str());
        }
      }
      if (manifest.files.empty()) {
        std::printf("  files: no sizes or checksums recorded (built by an older q3vl; rebuild to get them)\n");
      } else {
        std::printf("  files %zu%s\n", manifest.files.size(), *verify ? ", sizes and sha256 verified" : ", sizes ok");
      }
      if (*verify && manifest.files.empty()) std::printf("  verify: no checksums recorded\n");
    }
    for (const auto& graph : manifest.graphs) {
      io::Json entry;
      entry["name"] = graph.name;
      std::vector<std::string> problems;
      try {
        runtime::OrtSession session(graph.name, *dir / graph.file);
        auto in = compare_io(graph.inputs, session.inputs(), "input");
        auto out = compare_io(graph.outputs, session.outputs(), "output");
        problems.insert(problems.end(), in.begin(), in.end());
        problems.insert(problems.end(), out.begin(), out.end());
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
      std::vector<std::pair<std::string, std::int64_t>> ops;
      try {
        ops = graph_domain_ops(*dir / graph.file);
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
      entry["ops"] = io::Json::object();
      for (const auto& [op, count] : ops) entry["ops"][op] = count;
      entry["session"] = problems.empty() ? "ok" : "failed";
      entry["problems"] = problems;
      failures += problems.empty() ? 0 : 1;
      report.push_back(entry);
      if (!*json) {
        std::printf("graph %s (%s, %s): session %s\n", graph.name.c_str(), graph.file.c_str(),
                    graph.precision.c_str(), problems.empty() ? "ok" : "FAILED");
        for (const auto& t : graph.inputs) std::printf("  in  %-28s %-8s %s\n", t.name.c_str(), t.dtype.c_str(), shape_text(t.shape).c_str());
        for (const auto& t : graph.outputs) std::printf("  out %-28s %-8s %s\n", t.name.c_str(), t.dtype.c_str(), shape_text(t.shape).c_str());
        if (!ops.empty()) {
          std::string line = "  ops";
          for (const auto& [op, count] : ops) line += " " + op + " x" + std::to_string(count) + ",";
          line.pop_back();
          std::printf("%s\n", line.c_str());
        }
        for (const auto& p : problems) std::printf("  problem: %s\n", p.c_str());
      }
    }
    if (*json) {
      io::Json j;
      j["manifest"] = io::manifest_to_json(manifest);
      j["sessions"] = report;
      std::printf("%s\n", j.dump(2).c_str());
    }
    if (failures > 0) {
      throw_error(ErrorKind::runtime, dir->string(), "",
                  "a session for every graph with the manifest's IO",
                  std::to_string(failures) + " graph(s) failed");
    }
    return 0;
  };
}

}  // namespace
}  // namespace q3vl::tools

Q3VL_REGISTER_SUBCOMMAND("inspect", "Print a package's manifest and graph IO; open an ONNX Runtime session per graph",
                         q3vl::tools::setup_inspect);
