#include "io/manifest.h"

#include <algorithm>

#include "core/sha256.h"
#include "q3vl/error.h"

namespace q3vl::io {
namespace {

Json tensor_json(const PackageTensor& t) {
  Json j;
  j["name"] = t.name;
  j["dtype"] = t.dtype;
  j["shape"] = t.shape;
  return j;
}

std::vector<PackageTensor> tensors_from(const JsonObject& parent, std::string_view key) {
  std::vector<PackageTensor> out;
  const Json& list = parent.json().at(std::string(key));
  if (!list.is_array()) parent.fail(key, "array of tensors");
  for (std::size_t i = 0; i < list.size(); ++i) {
    JsonObject t(list[i], parent.file(), parent.field_path(key) + "[" + std::to_string(i) + "]");
    PackageTensor tensor{t.get_string("name"), t.get_string("dtype"), {}};
    if (!t.has("shape") || !t.json()["shape"].is_array()) t.fail("shape", "array of strings");
    for (const auto& d : t.json()["shape"]) {
      if (!d.is_string()) t.fail("shape", "array of strings");
      tensor.shape.push_back(d.get<std::string>());
    }
    out.push_back(std::move(tensor));
  }
  return out;
}

// Every scalar field of q3vl.json after format_version, once, in file order: its
// section ("" for the top level), its key and its member. The writer and the reader both
// walk this list, so a field cannot be written under one key and read under another, and
// the key order (hence the file's bytes) is fixed here. `Manifest` is PackageManifest or
// const PackageManifest; `field(section, key, member)` is called for each.
template <typename Manifest, typename Field>
void for_each_field(Manifest& m, Field&& field) {
  field("", "builder_version", m.builder_version);
  field("", "model_type", m.model_type);
  field("", "decoder_precision", m.decoder_precision);
  field("", "vision_precision", m.vision_precision);
  field("", "logits_mode", m.logits_mode);
  field("quantization", "method", m.quantization.method);
  field("quantization", "block_size", m.quantization.block_size);
  field("quantization", "symmetric", m.quantization.symmetric);
  field("quantization", "accuracy_level", m.quantization.accuracy_level);
  field("quantization", "lm_head_precision", m.quantization.lm_head_precision);
  field("quantization", "int8_edge_layers", m.quantization.int8_edge_layers);
  field("tokens", "image_token_id", m.tokens.image_token_id);
  field("tokens", "video_token_id", m.tokens.video_token_id);
  field("tokens", "vision_start_token_id", m.tokens.vision_start_token_id);
  field("tokens", "vision_end_token_id", m.tokens.vision_end_token_id);
  field("tokens", "eos_token_ids", m.tokens.eos_token_ids);
  field("tokens", "pad_token_id", m.tokens.pad_token_id);
  field("decoder", "num_hidden_layers", m.num_hidden_layers);
  field("decoder", "num_key_value_heads", m.num_key_value_heads);
  field("decoder", "head_dim", m.head_dim);
  field("decoder", "hidden_size", m.hidden_size);
  field("decoder", "vocab_size", m.vocab_size);
  field("decoder", "deepstack_layers", m.deepstack_layers);
}

// One typed read per member type of the table above.
void read_field(const JsonObject& o, std::string_view key, std::string& out) { out = o.get_string(key); }
void read_field(const JsonObject& o, std::string_view key, bool& out) { out = o.get_bool(key); }
void read_field(const JsonObject& o, std::string_view key, std::int64_t& out) { out = o.get_int(key); }
void read_field(const JsonObject& o, std::string_view key, int& out) { out = static_cast<int>(o.get_int(key)); }
void read_field(const JsonObject& o, std::string_view key, std::vector<std::int64_t>& out) {
  out = o.get_int_array(key);
}

}  // namespace

Json manifest_to_json(const PackageManifest& m) {
  Json j;
  j["format_version"] = m.format_version;
  for_each_field(m, [&](std::string_view section, const char* key, const auto& value) {
    if (section.empty()) {
      j[key] = value;
    } else {
      j[std::string(section)][key] = value;
    }
  });
  j["quantization"]["kernels"] = m.quantization.kernels;
  if (!m.quantization.recipe.empty()) j["quantization"]["recipe"] = m.quantization.recipe;
  if (m.quantization.fake_quant) j["quantization"]["fake_quant"] = true;
  j["decoder"]["kv_cache_dtype"] = m.kv_cache_dtype;
  if (const auto& c = m.quantization.calibration) {
    j["quantization"]["calibration"] = Json{{"source", c->source},
                                            {"conversations", c->conversations},
                                            {"tokens", c->tokens},
                                            {"decoder_precision", c->decoder_precision}};
  }
  Json graphs = Json::array();
  for (const auto& g : m.graphs) {
    Json gj;
    gj["name"] = g.name;
    gj["file"] = g.file;
    gj["weights_file"] = g.weights_file;
    gj["precision"] = g.precision;
    gj["inputs"] = Json::array();
    for (const auto& t : g.inputs) gj["inputs"].push_back(tensor_json(t));
    gj["outputs"] = Json::array();
    for (const auto& t : g.outputs) gj["outputs"].push_back(tensor_json(t));
    graphs.push_back(gj);
  }
  j["graphs"] = graphs;
  Json files = Json::array();
  for (const auto& f : m.files) {
    Json fj;
    fj["path"] = f.path;
    fj["size"] = f.size;
    fj["sha256"] = f.sha256;
    files.push_back(fj);
  }
  j["files"] = files;
  j["preprocessing"] = m.preprocessing_json.empty() ? Json::object() : parse_json(m.preprocessing_json, "preprocessing");
  j["source_config"] = m.source_config_json.empty() ? Json::object() : parse_json(m.source_config_json, "config.json");
  return j;
}

PackageManifest manifest_from_json(const Json& json, const std::string& file) {
  JsonObject root(json, file);
  PackageManifest m;
  m.format_version = static_cast<int>(root.get_int("format_version"));
  if (m.format_version > kPackageFormatVersion) {
    throw_error(ErrorKind::unsupported, file, "format_version",
                "at most " + std::to_string(kPackageFormatVersion) + " (rebuild the package or update q3vl)",
                std::to_string(m.format_version));
  }
  for_each_field(m, [&](std::string_view section, std::string_view key, auto& value) {
    if (section.empty()) {
      read_field(root, key, value);
    } else {
      read_field(root.object(section), key, value);
    }
  });
  // Optional: packages from before the q3vl kernels existed all use MatMulNBits.
  if (root.object("quantization").has("kernels")) {
    m.quantization.kernels = root.object("quantization").get_string("kernels");
  } else if (!m.quantization.method.empty()) {
    m.quantization.kernels = "ort";
  }
  // Optional: packages without a recipe or fake quantization.
  if (root.object("quantization").has("recipe")) m.quantization.recipe = root.object("quantization").get_string("recipe");
  if (root.object("quantization").has("fake_quant")) {
    m.quantization.fake_quant = root.object("quantization").get_bool("fake_quant");
  }
  // Optional: packages from before the float16 KV cache all use float32.
  if (root.object("decoder").has("kv_cache_dtype")) {
    m.kv_cache_dtype = root.object("decoder").get_string("kv_cache_dtype");
    if (m.kv_cache_dtype != "float32" && m.kv_cache_dtype != "float16" && m.kv_cache_dtype != "int8") {
      root.object("decoder").fail("kv_cache_dtype", "float32, float16 or int8", "\"" + m.kv_cache_dtype + "\"");
    }
  }
  if (root.object("quantization").has("calibration")) {
    const JsonObject c = root.object("quantization").object("calibration");
    m.quantization.calibration =
        CalibrationInfo{c.get_string("source"), c.get_int("conversations"), c.get_int("tokens"),
                        c.get_string("decoder_precision")};
  }
  if (!json.contains("graphs") || !json["graphs"].is_array()) root.fail("graphs", "array of graphs");
  for (std::size_t i = 0; i < json["graphs"].size(); ++i) {
    JsonObject g(json["graphs"][i], file, "graphs[" + std::to_string(i) + "]");
    PackageGraph graph{g.get_string("name"), g.get_string("file"), g.get_string("weights_file"),
                       g.get_string("precision"), {}, {}};
    if (!g.has("inputs")) g.fail("inputs", "array of tensors");
    if (!g.has("outputs")) g.fail("outputs", "array of tensors");
    graph.inputs = tensors_from(g, "inputs");
    graph.outputs = tensors_from(g, "outputs");
    m.graphs.push_back(std::move(graph));
  }
  // Packages from before the file list have no "files": they load without the checks.
  if (root.has("files") && !json["files"].is_array()) root.fail("files", "array of files");
  for (std::size_t i = 0; root.has("files") && i < json["files"].size(); ++i) {
    JsonObject f(json["files"][i], file, "files[" + std::to_string(i) + "]");
    PackageFile entry{f.get_string("path"), 0, f.get_string("sha256")};
    // The path is joined to the package directory and read: it must stay inside it.
    const std::filesystem::path path(entry.path);
    const bool escapes = path.empty() || path.is_absolute() ||
                         std::any_of(path.begin(), path.end(), [](const auto& part) { return part == ".."; });
    if (escapes) f.fail("path", "a relative path inside the package");
    const std::int64_t size = f.get_int("size");
    if (size < 0) f.fail("size", "a byte count >= 0");
    entry.size = static_cast<std::uint64_t>(size);
    const bool hex = entry.sha256.size() == 64 &&
                     entry.sha256.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) f.fail("sha256", "64 lower-case hex digits");
    m.files.push_back(std::move(entry));
  }
  if (json.contains("preprocessing")) m.preprocessing_json = json["preprocessing"].dump();
  if (json.contains("source_config")) m.source_config_json = json["source_config"].dump();
  return m;
}

}  // namespace q3vl::io

namespace q3vl {

const PackageGraph& PackageManifest::graph(const std::string& name) const {
  for (const auto& g : graphs) {
    if (g.name == name) return g;
  }
  throw_error(ErrorKind::format, kManifestFileName, "graphs", "a graph named " + name, "none");
}

bool PackageManifest::has_graph(const std::string& name) const {
  for (const auto& g : graphs) {
    if (g.name == name) return true;
  }
  return false;
}

PackageManifest load_package_manifest(const std::filesystem::path& package_dir) {
  const auto path = package_dir / kManifestFileName;
  if (!std::filesystem::exists(path) && std::filesystem::exists(package_dir / "genai_config.json")) {
    // A `q3vl build --target ort-genai` package: its graphs follow GenAI's contract (grid
    // tables computed in the vision graph, features scattered in the embedding graph,
    // DeepStack packed into inputs_embeds), not the one q3vl's runtime binds.
    throw_error(ErrorKind::unsupported, (package_dir / "genai_config.json").string(), "",
                "a q3vl package (q3vl.json): this is an ONNX Runtime GenAI package, whose graphs use GenAI's IO "
                "contract; run it with onnxruntime-genai (README: ONNX Runtime GenAI), or build a q3vl package "
                "with `q3vl build --target q3vl`",
                "genai_config.json");
  }
  if (!std::filesystem::exists(path)) {
    throw_error(ErrorKind::io, path.string(), "", "a q3vl package manifest (build one with `q3vl build`)",
                "no such file");
  }
  return io::manifest_from_json(io::read_json_file(path), path.string());
}

void check_package_file_sizes(const std::filesystem::path& package_dir, const PackageManifest& manifest) {
  for (const auto& f : manifest.files) {
    const auto path = package_dir / f.path;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw_error(ErrorKind::io, path.string(), "", "a file listed in q3vl.json", "missing");
    if (size != f.size) {
      throw_error(ErrorKind::format, path.string(), "size", std::to_string(f.size) + " bytes (q3vl.json)",
                  std::to_string(size) + " bytes");
    }
  }
}

void verify_package_files(const std::filesystem::path& package_dir, const PackageManifest& manifest) {
  check_package_file_sizes(package_dir, manifest);
  for (const auto& f : manifest.files) {
    const auto path = package_dir / f.path;
    const auto digest = core::sha256_file_hex(path);
    if (digest != f.sha256) throw_error(ErrorKind::format, path.string(), "sha256", f.sha256, digest);
  }
}

}  // namespace q3vl
