// Model::load: manifest -> sessions + text/vision front ends (include/q3vl/model.h).
#include "q3vl/model.h"

#include <filesystem>

#include "q3vl/error.h"
#include "runtime/model_parts.h"

namespace q3vl {
namespace {

namespace fs = std::filesystem;

fs::path require_file(const fs::path& dir, const std::string& name, const std::string& what) {
  const fs::path path = dir / name;
  if (!fs::is_regular_file(path)) {
    throw_error(ErrorKind::io, path.string(), "", "the package's " + what, "no such file");
  }
  return path;
}

std::unique_ptr<runtime::ModelParts> load_parts(const fs::path& dir, const ModelOptions& options) {
  if (options.prefill_chunk_tokens < 1) {
    throw_error(ErrorKind::usage, "", "prefill_chunk_tokens", "positive integer",
                std::to_string(options.prefill_chunk_tokens));
  }
  if (!fs::is_directory(dir)) throw_error(ErrorKind::io, dir.string(), "", "a package directory", "none");
  PackageManifest manifest = load_package_manifest(dir);
  check_package_file_sizes(dir, manifest);
  runtime::SessionConfig session;
  session.intra_op_threads = options.intra_op_threads;
  session.inter_op_threads = options.inter_op_threads;
  session.allow_spinning = options.allow_spinning;
  // Checks the graph's files now; the returned opener creates its session.
  auto opener = [&](const std::string& name) {
    const PackageGraph& graph = manifest.graph(name);
    runtime::SessionConfig config = session;
    if (!options.profile_prefix.empty()) config.profile_prefix = options.profile_prefix.string() + "." + name;
    require_file(dir, graph.weights_file, name + " graph weights");
    const fs::path file = require_file(dir, graph.file, name + " graph");
    return [name, file, config] { return runtime::OrtSession(name, file, config); };
  };
  auto open = [&](const std::string& name) { return opener(name)(); };
  require_file(dir, "tokenizer.json", "tokenizer");
  ModelConfig config = parse_model_config(manifest.source_config_json, "q3vl.json: source_config_json");
  auto parts = std::unique_ptr<runtime::ModelParts>(new runtime::ModelParts{
      dir, manifest, options, config, load_processor_config(dir),
      vision::GridTableParams::from_config(config.vision),
      runtime::load_generation_defaults(dir, manifest.tokens.eos_token_ids),
      text::Tokenizer::load(dir), text::ChatTemplate::load(dir),
      manifest.has_graph("vision") ? runtime::LazySession(opener("vision")) : runtime::LazySession(), open("embed"),
      open("decoder"), {}});
  if (options.preload_vision && parts->vision.present()) parts->vision.get();
  return parts;
}

}  // namespace

std::shared_ptr<const Model> Model::load(const fs::path& package_dir, const ModelOptions& options) {
  return std::shared_ptr<const Model>(new Model(load_parts(package_dir, options)));
}

Model::Model(std::unique_ptr<runtime::ModelParts> parts) : parts_(std::move(parts)) {}
Model::~Model() = default;

const fs::path& Model::dir() const { return parts_->dir; }
const PackageManifest& Model::manifest() const { return parts_->manifest; }
const ModelOptions& Model::options() const { return parts_->options; }
const GenerateOptions& Model::default_options() const { return parts_->defaults; }
std::int64_t Model::context_length() const { return parts_->config.text.max_position_embeddings; }
std::string_view Model::token_bytes(std::int64_t id) const { return runtime::TokenBytes::of(*parts_).bytes(id); }

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::stop_string: return "stop_string";
    case FinishReason::cancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace q3vl
